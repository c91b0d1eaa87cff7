"""Reading and writing images and masks with errors that name the file.

Conventions (bad-input behaviour, see README "Bad input")
----------------------------------------------------------
* Images are returned as ``uint8`` arrays of shape (H, W, 3) (RGB). Any other mode
  (grayscale 'L', palette 'P', 16-bit 'I;16', CMYK, ...) is converted to RGB with a
  logged warning naming the file. Images with an alpha channel ('RGBA', 'LA', 'PA',
  palette with transparency) are *composited on black* (rgb * alpha / 255, rounded;
  our choice: deterministic, keeps every pixel, and a transparent background becomes
  the darkest colour instead of arbitrary hidden RGB values); the warning says how many
  pixels were not fully opaque. A fully opaque alpha channel is simply dropped (warning).
* Masks are returned as ``int64`` label maps of shape (H, W):
  - palette ('P') PNG: the indices (DAVIS-2017 style, 255 = void);
  - grayscale with values in {0, 255}: binary (DAVIS-2016 style) -> {0, 1};
  - grayscale with values in {0, 1}: binary, kept;
  - grayscale with small ids (all values < ``MAX_GRAY_LABEL`` apart from 255 = void):
    a multi-class label map, kept as ids (e.g. {0, 1, 2, 255});
  - any other grayscale value set (anti-aliased or soft masks) is an error naming the
    values, unless ``binary_threshold`` is given;
  - RGB(A) masks whose three channels are equal are read as grayscale (warning); real
    colour masks are rejected (their colours are ambiguous; save them as palette PNGs).
* :func:`check_pair` / :func:`check_mask_classes` raise :class:`DataError` naming the
  file(s) for size mismatches, empty masks and more classes than configured.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .atomic import atomic_path

log = logging.getLogger("gan_core.images")

# Grayscale masks whose values (void 255 excluded) all lie below this bound are read as label ids
# (our choice: DAVIS has at most 10 objects per frame; 64 leaves room while still rejecting soft or
# anti-aliased 0..255 masks, whose values spread over the whole range).
MAX_GRAY_LABEL = 64
VOID_LABEL = 255

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


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info)


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as uint8 (H, W, 3); other modes are converted with a warning (module docstring)."""
    img = _open(path)
    if img.mode != "RGB":
        if _has_alpha(img):
            rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
            alpha = rgba[..., 3:].astype(np.float32)
            n_transparent = int((rgba[..., 3] < 255).sum())
            if n_transparent:
                log.warning("%s: image mode %s with %d non-opaque pixel(s) of %d; composited on black to RGB",
                            path, img.mode, n_transparent, alpha.size)
                arr = np.round(rgba[..., :3].astype(np.float32) * alpha / 255.0).astype(np.uint8)
            else:
                log.warning("%s: image mode %s with a fully opaque alpha channel; alpha dropped (RGB)", path,
                            img.mode)
                arr = np.ascontiguousarray(rgba[..., :3])
        else:
            log.warning("%s: image mode %s converted to RGB", path, img.mode)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                # 16/32-bit grayscale: PIL's convert("RGB") clips instead of scaling; scale the maximum
                # representable value to 255 instead (our choice).
                raw = np.asarray(img).astype(np.float64)
                top = 65535.0 if raw.max() > 255 else 255.0
                gray = np.clip(np.round(raw / top * 255.0), 0, 255).astype(np.uint8)
                arr = np.repeat(gray[..., None], 3, axis=2)
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    else:
        arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(path, "image has zero size")
    return arr


def _gray_labels(path, arr: np.ndarray, binary_threshold: int | None) -> np.ndarray:
    vals = np.unique(arr)
    vset = set(vals.tolist())
    if vset <= {0, 1}:
        return arr
    if vset <= {0, 255}:
        return (arr > 0).astype(np.int64)
    if binary_threshold is not None:
        return (arr > binary_threshold).astype(np.int64)
    ids = vals[vals != VOID_LABEL]
    if ids.min() >= 0 and ids.max() < MAX_GRAY_LABEL:
        return arr  # multi-class label map (ids), 255 = void
    raise DataError(
        path,
        f"grayscale mask with values {vals[:8].tolist()}{'...' if len(vals) > 8 else ''} is neither binary "
        f"(0/255 or 0/1), nor a label map of ids < {MAX_GRAY_LABEL} (255 = void), nor a palette PNG; "
        "a soft or anti-aliased mask needs binary_threshold",
    )


def read_mask(path: str | Path, binary_threshold: int | None = None) -> np.ndarray:
    """Read a segmentation mask as an int64 label map (H, W).

    * 'P' (palette) PNG: the indices (255 stays 255 = void).
    * 'L' / '1' / 16-bit PNG with values in {0, 255} or {0, 1}: converted to {0, 1}.
    * 'L' with small ids (< ``MAX_GRAY_LABEL``, 255 = void): a multi-class label map, ids kept.
    * 'L' with other values: thresholded at ``binary_threshold`` if given, else an error.
    * RGB / RGBA masks with three equal channels: read as grayscale (warning); colour masks are rejected.
    """
    img = _open(path)
    if img.mode == "P":
        return np.asarray(img, dtype=np.int64)
    if img.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L"):
        return _gray_labels(path, np.asarray(img).astype(np.int64), binary_threshold)
    if img.mode in ("LA", "RGB", "RGBA"):
        arr = np.asarray(img).astype(np.int64)
        chans = arr[..., :1] if img.mode == "LA" else arr[..., :3]
        if (chans == chans[..., :1]).all():
            log.warning("%s: mask of mode %s with equal channels read as a grayscale mask", path, img.mode)
            return _gray_labels(path, chans[..., 0], binary_threshold)
        raise DataError(path, f"colour ({img.mode}) mask: colours are ambiguous; save the mask as a palette PNG "
                              "(indices = object ids) or a grayscale PNG")
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


def check_mask_classes(mask_path: str | Path, mask: np.ndarray, num_classes: int) -> None:
    """Raise DataError if ``mask`` holds an id >= ``num_classes`` (channels incl. background 0; void 255 is
    background). ``num_classes == 0`` means "derive from the mask" and accepts any mask."""
    if not num_classes:
        return
    ids = np.unique(np.asarray(mask))
    ids = ids[ids != VOID_LABEL]
    if ids.size and int(ids.max()) >= num_classes:
        raise DataError(
            mask_path,
            f"mask has {ids.size} classes {ids.tolist()} (background 0 included) but num_mask_classes="
            f"{num_classes} is configured (ids must lie in 0..{num_classes - 1}; 255 = void)",
        )


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
