"""SIV-GAN's Single Image and Single Video datasets (thesis Sec. 5.3.1, l.1468-1472).

* **Single Image**: one model per image -- the 50 Places images of SinGAN's evaluation, and the frame
  from the middle of each DAVIS / YFCC100M video ("for the Single Image setup we use only one frame
  from the middle of each sequence", thesis l.1470).
* **Single Video**: one model per video, trained on all its frames (thesis l.1470). The thesis'
  15 videos (2-10 s, 60-100 frames) are not published; the workflow takes a changeable selection
  from ``config.yaml`` (``datasets.single_image.videos``).
* **Skip-factor subsets** (Fig. 5.6, thesis l.1521): every i-th frame, a fixed number of frames.

Prepared data (what the training rules read)::

    <dir>/image.png                  Single Image: the training image (RGB PNG)
    <dir>/frames/00000.png ...       Single Video: the (subsampled) frames, RGB PNGs
    <dir>/frames.json                the frame list with the source file of each frame

Bad input: grayscale, palette or RGBA images are converted to RGB with a logged warning (alpha is
dropped); an image whose short side is below the model's minimum (``MIN_IMAGE_SIDE`` = 48 px,
the smallest SIV-GAN generator) raises :class:`DataError` naming the file, as does an empty or
unreadable frame folder.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from ..utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def min_image_side() -> int:
    """The smallest trainable side of SIV-GAN (48 px = 3 * 2^(g-1) for g = 5, gan_core.nets.osmis)."""
    from ..nets.osmis import MIN_IMAGE_SIDE

    return int(MIN_IMAGE_SIDE)


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name (DAVIS: 00000.jpg, 00001.jpg, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "folder of images does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(folder, f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def load_training_image(path: str | Path, min_side: int | None = None) -> np.ndarray:
    """Read a training image as uint8 (H, W, 3).

    Grayscale / palette / RGBA / 16-bit inputs are converted to RGB with a warning naming the file;
    an image smaller than ``min_side`` (default: the model's minimum) raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode != "RGB":
                what = {"L": "grayscale", "1": "binary", "P": "palette", "RGBA": "RGBA (alpha dropped)",
                        "LA": "grayscale+alpha (alpha dropped)", "I;16": "16-bit grayscale",
                        "I": "32-bit grayscale", "CMYK": "CMYK"}.get(mode, mode)
                log.warning("%s: %s image converted to RGB", path, what)
                if mode in ("I", "I;16"):  # scale 16-bit values to 8 bit instead of clipping
                    arr = np.asarray(img, dtype=np.float64)
                    top = 65535.0 if arr.max() > 255 else 255.0
                    img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
                img = img.convert("RGB")
            arr = np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(path, f"unreadable image ({exc})") from exc
    side = min_image_side() if min_side is None else int(min_side)
    if min(arr.shape[:2]) < side:
        raise DataError(path, f"image of {arr.shape[0]}x{arr.shape[1]} px is smaller than the minimum side "
                              f"{side} px of the model (3 * 2^(g-1) for the smallest generator depth g=5)")
    return arr


def load_training_images(paths: Sequence[str | Path], min_side: int | None = None) -> list[np.ndarray]:
    return [load_training_image(p, min_side) for p in paths]


def middle_index(n: int) -> int:
    """Index of "one frame from the middle of each sequence" (thesis l.1470): n // 2 (our choice for even n)."""
    if n < 1:
        raise ValueError("empty sequence")
    return n // 2


def subsample(files: Sequence[Path], skip: int = 1, max_frames: int = 0) -> list[Path]:
    """Every ``skip``-th frame starting at the first, at most ``max_frames`` of them (0 = all).

    Fig. 5.6 (thesis l.1521): "a subset with index i includes each i-th video frame (the total number
    of frames is always kept to 100)". Too short a video for ``max_frames`` frames is an error."""
    if skip < 1 or max_frames < 0:
        raise ConfigError(f"skip must be >= 1 and max_frames >= 0, got skip={skip}, max_frames={max_frames}")
    picked = list(files)[::skip]
    if max_frames:
        if len(picked) < max_frames:
            where = Path(files[0]).parent if files else "<frames>"
            raise DataError(where, f"{len(files)} frames give only {len(picked)} frames at skip factor {skip}; "
                                   f"{max_frames} are needed (a video of >= {(max_frames - 1) * skip + 1} frames)")
        picked = picked[:max_frames]
    return picked


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def prepare_image(src: str | Path, out: str | Path, min_side: int | None = None) -> Path:
    """Single Image: ``src`` is an image file, or a folder of frames (the middle frame is taken)."""
    src = Path(src)
    if src.is_dir():
        files = list_image_files(src)
        src = files[middle_index(len(files))]
        log.info("middle frame of %d: %s", len(files), src)
    out = Path(out)
    _write_png(out, load_training_image(src, min_side))
    write_json(out.with_suffix(".json"), {"source": str(src)})
    return out


def prepare_video(src: str | Path, out_dir: str | Path, skip: int = 1, max_frames: int = 0,
                  min_side: int | None = None) -> list[Path]:
    """Single Video: the (subsampled) frames of folder ``src`` as ``out_dir/frames/%05d.png``, plus
    ``out_dir/frames.json``. All frames must share one size (a DataError names the first that differs)."""
    files = subsample(list_image_files(src), skip, max_frames)
    out_dir = Path(out_dir)
    written, size = [], None
    for i, f in enumerate(files):
        arr = load_training_image(f, min_side)
        if size is None:
            size = arr.shape[:2]
        elif arr.shape[:2] != size:
            raise DataError(f, f"frame of {arr.shape[0]}x{arr.shape[1]} px differs from the first frame's "
                               f"{size[0]}x{size[1]} px")
        dst = out_dir / "frames" / f"{i:05d}.png"
        _write_png(dst, arr)
        written.append(dst)
    write_json(out_dir / "frames.json", {"source": str(src), "skip": skip, "max_frames": max_frames,
                                         "frames": [f.name for f in written],
                                         "sources": [str(f) for f in files]})
    return written
