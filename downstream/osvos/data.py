"""DAVIS-format inputs for OSVOS: file listing, object masks, resizing, input normalisation, synthetic pools.

DAVIS layout: ``ROOT/JPEGImages/480p/<seq>/00000.jpg``, ``ROOT/Annotations/480p/<seq>/00000.png`` (palette PNG
with object ids, 255 = void), ``ROOT/ImageSets/{2016,2017}/val.txt``. In "2016" mode the objects are merged
into one foreground (ids > 0, void excluded), as the DAVIS-16 evaluation from a DAVIS-2017 root does
(reference notes downstream-protocols.md §6.3).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import ConfigError, DataError
from gan_core.utils.images import read_image, read_mask

from .config import CAFFE_MEAN_BGR, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
from gan_core.utils.jsonfile import read_json

VOID = 255
MODES = ("2016", "2017")


def check_mode(mode: str) -> str:
    mode = str(mode)
    if mode not in MODES:
        raise ConfigError(f"DAVIS mode must be '2016' or '2017', got {mode!r}")
    return mode


def _sequence_files(davis_root: str | Path, kind: str, sequence: str, pattern: str) -> list[Path]:
    folder = Path(davis_root) / kind / "480p" / sequence
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(folder, f"no {pattern} files found (expected DAVIS layout {kind}/480p/<sequence>/)")
    return files


def sequence_frames(davis_root: str | Path, sequence: str) -> list[Path]:
    """Sorted JPEG frames of a sequence; DataError if there are none."""
    return _sequence_files(davis_root, "JPEGImages", sequence, "*.jpg")


def sequence_annotations(davis_root: str | Path, sequence: str) -> list[Path]:
    """Sorted annotation PNGs of a sequence; DataError if there are none."""
    return _sequence_files(davis_root, "Annotations", sequence, "*.png")


def read_sequence_list(path: str | Path) -> list[str]:
    """Sequence names, one per line (blank lines and '#' comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "sequence list does not exist")
    names = [ln.strip() for ln in path.read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise DataError(path, "sequence list is empty")
    return names


def foreground(label: np.ndarray | torch.Tensor, obj: int | None):
    """Binary mask of object ``obj`` (None = all objects merged, void excluded)."""
    if obj is None:
        return (label > 0) & (label != VOID)
    return label == obj


def object_ids(label: np.ndarray, mode: str, path: str | Path) -> list[int]:
    """Objects to segment: [1] (merged) in 2016 mode, the ids present in the first frame in 2017 mode."""
    ids = sorted(int(v) for v in np.unique(label) if v not in (0, VOID))
    if not ids:
        raise DataError(path, "first-frame annotation has no foreground object")
    return [1] if mode == "2016" else ids


def untracked_objects(davis_root: str | Path, sequence: str, ids: list[int], mode: str) -> list[int]:
    """Ids that appear in later annotations (those that exist) but not in frame 0 (2017 mode only).

    DAVIS-17 semi-supervised semantics (README "Bad input"): only the objects of the first-frame mask are
    given, so OSVOS and STM segment only those; the davis2017-evaluation toolkit scores objects
    ``1..max(first GT frame)`` (``downstream.davis_eval``), so a later-appearing id above that maximum is not
    scored either. Callers log a warning and record the ids in ``done.json`` (``untracked_objects``)."""
    if mode == "2016":
        return []
    seen: set[int] = set()
    for ann in sequence_annotations(davis_root, sequence)[1:]:
        seen.update(int(v) for v in np.unique(read_mask(ann)))
    return sorted(seen - set(ids) - {0, VOID})


def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 arrays (same size) -> uint8 tensor (N,3,H,W)."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def resize_images(images: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize of (N,3,H,W) images to ``size`` (H, W); uint8 in -> uint8 out (rounded)."""
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images
    out = F.interpolate(images.float(), size=tuple(size), mode="bilinear", align_corners=False,
                        antialias=bool(size[0] < images.shape[-2]))
    return out.round().clamp(0, 255).to(images.dtype) if images.dtype == torch.uint8 else out


def resize_labels(labels: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Nearest-neighbour resize of (N,H,W) integer label maps to ``size`` (H, W)."""
    if size is None or tuple(labels.shape[-2:]) == tuple(size):
        return labels
    out = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")
    return out[:, 0].to(labels.dtype)


def normalise(images: torch.Tensor, mode: str) -> torch.Tensor:
    """RGB images with values 0..255 (N,3,H,W) -> network input.

    "caffe": BGR order minus the Caffe mean, no /255 (official OSVOS parent, reference notes §1.1);
    "imagenet": RGB/255 minus the ImageNet mean, divided by the std.
    """
    x = images.float()
    if mode == "caffe":
        mean = torch.tensor(CAFFE_MEAN_BGR, device=x.device).view(1, 3, 1, 1)
        return x.flip(1) - mean
    if mode == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN_RGB, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD_RGB, device=x.device).view(1, 3, 1, 1)
        return (x / 255.0 - mean) / std
    raise ConfigError(f"unknown input_normalisation {mode!r}")


def read_synthetic_manifest(path: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths of the kept synthetic pairs of a filtering manifest.

    Format: ``{"kept": [{"image": relpath, "mask": relpath}, ...], ...}``, paths relative to the manifest's
    folder (absolute paths are accepted as they are).
    """
    path = Path(path)
    data = read_json(path, "synthetic manifest")
    kept = data.get("kept") if isinstance(data, dict) else None
    if not isinstance(kept, list):
        raise DataError(path, "manifest has no list 'kept'")
    pairs = []
    for i, entry in enumerate(kept):
        if not isinstance(entry, dict) or "image" not in entry or "mask" not in entry:
            raise DataError(path, f"entry {i} of 'kept' lacks 'image' or 'mask'")
        pairs.append((path.parent / entry["image"], path.parent / entry["mask"]))
    if not pairs:
        raise DataError(path, "manifest keeps no synthetic pair")
    return pairs


def load_synthetic_pool(pairs: list[tuple[Path, Path]], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the synthetic pairs and resize them to ``size`` (image bilinear, mask nearest).

    Returns uint8 images (N,3,H,W) and int64 label maps (N,H,W) (object ids as in the synthetic masks).
    """
    images, labels = [], []
    for img_path, mask_path in pairs:
        img, lab = read_image(img_path), read_mask(mask_path)
        if img.shape[:2] != lab.shape:
            raise DataError(mask_path, f"mask size {lab.shape[::-1]} differs from image {img_path} size {img.shape[1::-1]}")
        images.append(resize_images(images_to_tensor([img]), size))
        labels.append(resize_labels(torch.from_numpy(lab)[None], size))
    return torch.cat(images), torch.cat(labels)
