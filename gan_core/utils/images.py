"""Reading and writing images and masks with errors that name the file.

Conventions
-----------
* Images are returned as ``uint8`` arrays of shape (H, W, 3) (RGB). Grayscale and
  RGBA inputs are converted (RGBA: alpha dropped) -- the conversion is logged-free
  and deterministic.
* Masks are returned as ``int64`` label maps of shape (H, W). Palette ('P') PNGs
  give their indices (DAVIS-2017 style, 255 = void); grayscale 0/255 masks
  (DAVIS-2016 style) give 0/1. Any other grayscale value set is an error unless
  ``binary_threshold`` is given.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .atomic import atomic_path

# DAVIS / PASCAL VOC palette: index i -> colour bits of i spread over RGB.
def davis_palette() -> list[int]:
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _open(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(path, f"unreadable image ({exc})") from exc
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as uint8 (H, W, 3)."""
    img = _open(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(path, "image has zero size")
    return arr


def read_mask(path: str | Path, binary_threshold: int | None = None) -> np.ndarray:
    """Read a segmentation mask as an int64 label map (H, W).

    * 'P' (palette) PNG: the indices (255 stays 255 = void).
    * 'L' / '1' PNG with values in {0, 255} or {0, 1}: converted to {0, 1}.
    * 'L' with other values: thresholded at ``binary_threshold`` if given, else an error.
    * RGB masks are rejected (their colours are ambiguous).
    """
    img = _open(path)
    if img.mode == "P":
        return np.asarray(img, dtype=np.int64)
    if img.mode in ("1", "L", "I", "I;16"):
        arr = np.asarray(img).astype(np.int64)
        vals = np.unique(arr)
        if set(vals.tolist()) <= {0, 1}:
            return arr
        if set(vals.tolist()) <= {0, 255}:
            return (arr > 0).astype(np.int64)
        if binary_threshold is not None:
            return (arr > binary_threshold).astype(np.int64)
        raise DataError(
            path,
            f"grayscale mask with values {vals[:8].tolist()}... is neither binary (0/255) nor a palette PNG",
        )
    raise DataError(path, f"mask must be a palette or grayscale PNG, got mode {img.mode!r}")


def check_pair(image_path: str | Path, image: np.ndarray, mask_path: str | Path, mask: np.ndarray) -> None:
    """Raise DataError if image and mask sizes differ or the mask has no labelled pixel."""
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            mask_path,
            f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image {image_path} "
            f"size {image.shape[1]}x{image.shape[0]}",
        )
    valid = mask[mask != 255]
    if valid.size == 0 or valid.max() == 0:
        raise DataError(mask_path, "mask is empty (no foreground object)")


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) image atomically (format from the suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format=_fmt(path))


def write_mask(path: str | Path, mask: np.ndarray, palette: bool = True) -> None:
    """Write a label map as an indexed PNG (DAVIS palette) or a 0/255 'L' PNG."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.min() < 0 or mask.max() > 255:
        raise ValueError(f"{path}: label values must lie in 0..255")
    with atomic_path(path) as tmp:
        if palette:
            img = Image.fromarray(mask.astype(np.uint8))  # mode 'L'
            img.putpalette(davis_palette())  # turns it into a 'P' image with the same indices
        else:
            img = Image.fromarray((mask > 0).astype(np.uint8) * 255)
        img.save(tmp, format="PNG")


def _fmt(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(ext, "PNG")
