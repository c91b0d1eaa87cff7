"""Image / label-map pairs, their synthetic counterparts, and the joint augmentation.

Augmentation is Encoding's ``_sync_transform`` (reference notes, downstream-protocols §4.2): random
horizontal flip, random rescale by s in ``scale_range``, pad to the crop size (image 0, label ``ignore``),
random crop. The parameters are drawn once per label map and applied identically to the real image, its
label map and its synthetic counterpart, so that the shared label map fits both images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from gan_core.errors import DataError
from gan_core.utils.images import read_image

from .config import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, DeepLabConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Cityscapes labelIds -> 19 trainIds (cityscapesScripts labels.py; Encoding's _class_to_index).
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, "folder does not exist")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes}


def list_pairs(images_dir: str | Path, labels_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, label map) pairs matched by file stem, sorted by stem; every image needs a label PNG."""
    images = _by_stem(Path(images_dir), IMAGE_SUFFIXES)
    labels = _by_stem(Path(labels_dir), (".png",))
    if not images:
        raise DataError(images_dir, f"no images ({', '.join(IMAGE_SUFFIXES)}) found")
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(Path(labels_dir) / f"{missing[0]}.png", f"label map missing ({len(missing)} images without one)")
    return [(images[s], labels[s]) for s in sorted(images)]


def synthetic_paths(pairs: list[tuple[Path, Path]], synthetic_dir: str | Path) -> list[Path]:
    """The synthetic image generated from each pair's label map: ``<synthetic_dir>/<label stem>.<png|jpg>``."""
    synth = _by_stem(Path(synthetic_dir), IMAGE_SUFFIXES)
    out = []
    for _, label in pairs:
        if label.stem not in synth:
            raise DataError(Path(synthetic_dir) / f"{label.stem}.png",
                            f"synthetic counterpart of label map {label} is missing")
        out.append(synth[label.stem])
    return out


def read_label_map(path: str | Path) -> np.ndarray:
    """A label PNG (palette or grayscale indices, any values) as int64 (H, W); RGB is rejected."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("P", "L", "I", "I;16"):
                raise DataError(path, f"label map must be a palette or grayscale PNG, got mode {img.mode!r}")
            return np.asarray(img).astype(np.int64)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(path, f"unreadable label map ({exc})") from exc


def transform_labels(label: np.ndarray, kind: str, ignore_index: int) -> np.ndarray:
    """Raw ids -> training ids ("none", "ade20k": id-1 with 0 ignored, "cityscapes": labelIds -> trainIds)."""
    if kind == "none":
        return label
    if kind == "ade20k":
        return np.where(label == 0, ignore_index, label - 1)
    lut = np.full(max(256, int(label.max()) + 1), ignore_index, dtype=np.int64)
    for k, v in CITYSCAPES_TRAIN_IDS.items():
        lut[k] = v
    return lut[label]


def image_tensor(img: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, h, w) in [0, 1], bilinearly resized to ``size`` if needed."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]
    return t


def label_tensor(label: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    t = torch.from_numpy(np.array(label, dtype=np.int64, copy=True))
    if tuple(t.shape) != tuple(size):
        t = F.interpolate(t[None, None].float(), size=tuple(size), mode="nearest")[0, 0].long()
    return t


def normalise(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of (…, 3, H, W) images in [0, 1] (Encoding)."""
    mean = x.new_tensor(IMAGENET_MEAN_RGB).view(3, 1, 1)
    std = x.new_tensor(IMAGENET_STD_RGB).view(3, 1, 1)
    return (x - mean) / std


class SegmentationSet:
    """Training/validation pairs, optionally with synthetic counterparts, loaded at ``cfg.image_size``."""

    def __init__(self, pairs: list[tuple[Path, Path]], cfg: DeepLabConfig, synthetic: list[Path] | None = None):
        if synthetic is not None and len(synthetic) != len(pairs):
            raise ValueError("one synthetic image per pair is needed")
        self.pairs, self.cfg, self.synthetic = pairs, cfg, synthetic

    @classmethod
    def from_folders(cls, images_dir, labels_dir, cfg: DeepLabConfig, synthetic_dir=None) -> "SegmentationSet":
        pairs = list_pairs(images_dir, labels_dir)
        return cls(pairs, cfg, synthetic_paths(pairs, synthetic_dir) if synthetic_dir else None)

    def __len__(self) -> int:
        return len(self.pairs)

    def raw_label(self, i: int) -> np.ndarray:
        """Training ids at the label file's own resolution."""
        return transform_labels(read_label_map(self.pairs[i][1]), self.cfg.label_transform, self.cfg.ignore_index)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(image (3,H,W) in [0,1], label (H,W), synthetic image or None), all at ``cfg.image_size``."""
        img_path, lab_path = self.pairs[i]
        img, lab = read_image(img_path), self.raw_label(i)
        if img.shape[:2] != lab.shape:
            raise DataError(lab_path, f"label size {lab.shape[1]}x{lab.shape[0]} differs from image {img_path} "
                                      f"size {img.shape[1]}x{img.shape[0]}")
        size = tuple(self.cfg.image_size)
        syn = image_tensor(read_image(self.synthetic[i]), size) if self.synthetic is not None else None
        return image_tensor(img, size), label_tensor(lab, size), syn


@dataclass(frozen=True)
class AugParams:
    flip: bool
    scale: float
    u_y: float  # crop offset as a fraction of the free range, in [0, 1)
    u_x: float


def draw_aug(gen: torch.Generator, cfg: DeepLabConfig) -> AugParams:
    """One set of random augmentation parameters from ``gen`` (always 4 draws, so streams stay aligned)."""
    r = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
    lo, hi = cfg.scale_range
    return AugParams(flip=r[0] < cfg.hflip_p, scale=lo + (hi - lo) * r[1], u_y=r[2], u_x=r[3])


def apply_aug(img: torch.Tensor, label: torch.Tensor | None, p: AugParams, crop: tuple[int, int],
              ignore_index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip, rescale (image bilinear, label nearest), pad (image 0, label ignore), crop to ``crop``."""
    if p.flip:
        img = img.flip(-1)
        label = label.flip(-1) if label is not None else None
    h, w = img.shape[-2:]
    size = (max(1, round(h * p.scale)), max(1, round(w * p.scale)))
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    if label is not None:
        label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
    ch, cw = crop
    ph, pw = max(0, ch - size[0]), max(0, cw - size[1])
    if ph or pw:
        img = F.pad(img, (0, pw, 0, ph), value=0.0)
        if label is not None:
            label = F.pad(label, (0, pw, 0, ph), value=ignore_index)
    H, W = img.shape[-2:]
    y0, x0 = int(p.u_y * (H - ch + 1)), int(p.u_x * (W - cw + 1))
    img = img[:, y0:y0 + ch, x0:x0 + cw]
    if label is not None:
        label = label[y0:y0 + ch, x0:x0 + cw]
    return img, label
