"""Image folders for the metric CLI: list, group, and load as float tensors in [-1, 1]."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..utils.images import read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted PNG/JPG files of a folder (a single image file is returned as a one-element list)."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DataError(folder, "image folder does not exist")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def list_groups(folder: str | Path, groups: bool) -> list[list[Path]]:
    """Images grouped per immediate sub-folder (``groups=True``: one group per label map) or one group."""
    folder = Path(folder)
    if not groups:
        return [list_images(folder)]
    subs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not subs:
        raise DataError(folder, "--groups needs one sub-folder of samples per label map")
    return [list_images(s) for s in subs]


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images -> float32 (N, 3, H, W) in [-1, 1] (x / 255 * 2 - 1)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x / 255.0 * 2.0 - 1.0


def load_images(files: Sequence[str | Path], size: tuple[int, int] | None = None) -> torch.Tensor:
    """Images as one tensor in [-1, 1]; all must share one size unless ``size`` resizes them (bilinear, antialiased)."""
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("no image files given")
    out, first = [], None
    for f in files:
        t = to_tensor([read_image(f)])
        if size is not None and tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        elif size is None and first is not None and t.shape != first:
            raise DataError(f, f"size {t.shape[3]}x{t.shape[2]} differs from {files[0].name} "
                               f"({first[3]}x{first[2]}); all images of a set must share one size")
        first = first or t.shape
        out.append(t)
    return torch.cat(out)


def iter_image_batches(files: Sequence[str | Path], batch_size: int) -> Iterator[torch.Tensor]:
    """Batches in [-1, 1] for networks that resize every image themselves (FID: 299x299).

    Images of different sizes are resized one by one to 299x299 first (pytorch-fid resizes each
    image to 299 too, so the result is the same as a same-size batch).
    """
    from .fid import FID_SIZE

    files = list(files)
    for i in range(0, len(files), batch_size):
        chunk = [to_tensor([read_image(f)]) for f in files[i : i + batch_size]]
        if len({tuple(t.shape) for t in chunk}) > 1:
            chunk = [t if tuple(t.shape[-2:]) == (FID_SIZE, FID_SIZE) else
                     (2.0 * F.interpolate((t + 1.0) / 2.0, size=(FID_SIZE, FID_SIZE), mode="bilinear",
                                          align_corners=False) - 1.0) for t in chunk]
        yield torch.cat(chunk)


__all__ = ["IMAGE_SUFFIXES", "list_images", "list_groups", "to_tensor", "load_images", "iter_image_batches"]
