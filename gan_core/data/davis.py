"""Reader of a DAVIS-2017 trainval root (also used for DAVIS-2016, objects merged).

Layout (reference notes, downstream-protocols §8)::

    ROOT/JPEGImages/480p/<seq>/00000.jpg
    ROOT/Annotations/480p/<seq>/00000.png     palette PNG: ids 1..K, 0 background, 255 void
    ROOT/ImageSets/{2016,2017}/{train,val}.txt

Modes (how the ground truth is read), following the evaluation conventions in the
reference notes §6 (DAVIS-2017 toolkit; hkchengrex 2016 fork and STM ``-y 16``):

* ``"2017"``: object ids as stored; void 255 -> 0.
* ``"2016"``: all objects merged, ``(m > 0) & (m != 255)`` -> 1; void -> 0.

Both modes read the same DAVIS-2017 root; ``ImageSets/2016`` lists the sequences of
DAVIS-2016. The embedded synthetic dataset (``gan_core.data.embedded_davis``) has the
same layout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, MissingResourceError
from ..utils.images import check_pair, read_image, read_mask

YEARS = ("2016", "2017")
SPLITS = ("train", "val", "test-dev")
VOID = 255
DEFAULT_FETCH_TARGET = "fetch_davis2017_trainval_480p"


def _mode(mode: str | int) -> str:
    mode = str(mode)
    if mode not in YEARS:
        raise ConfigError(f"DAVIS mode/year must be one of {YEARS}, got {mode!r}")
    return mode


class DavisDataset:
    """Sequences, frames and masks of a DAVIS root, with errors naming the file."""

    def __init__(self, root: str | Path, resolution: str = "480p", fetch_target: str = DEFAULT_FETCH_TARGET):
        self.root = Path(root)
        self.resolution = resolution
        self.fetch_target = fetch_target
        for sub in (self.image_dir, self.annotation_dir):
            if not sub.is_dir():
                raise MissingResourceError(
                    "DAVIS-2017 trainval 480p dataset",
                    sub,
                    fetch_target,
                    "The root must contain JPEGImages/480p, Annotations/480p and ImageSets/{2016,2017} "
                    "(DAVIS-2017 layout); for the tiny preset use the embedded dataset instead "
                    "(python -m gan_core.data.embedded_cli davis --out DIR).",
                )

    @property
    def image_dir(self) -> Path:
        return self.root / "JPEGImages" / self.resolution

    @property
    def annotation_dir(self) -> Path:
        return self.root / "Annotations" / self.resolution

    # ---------------------------------------------------------------- lists
    def sequences(self, year: str | int = "2017", split: str = "val") -> list[str]:
        """Sequence names of ``ImageSets/<year>/<split>.txt`` (each checked to exist)."""
        year = _mode(year)
        if split not in SPLITS:
            raise ConfigError(f"DAVIS split must be one of {SPLITS}, got {split!r}")
        path = self.root / "ImageSets" / year / f"{split}.txt"
        if not path.is_file():
            raise MissingResourceError(f"DAVIS sequence list {year}/{split}", path, self.fetch_target)
        names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        if not names:
            raise DataError(path, "sequence list is empty")
        for n in names:
            if not (self.image_dir / n).is_dir():
                raise DataError(path, f"lists sequence {n!r} but {self.image_dir / n} does not exist")
        return names

    def frames(self, seq: str) -> list[Path]:
        """Frame files of a sequence, sorted by name (00000.jpg, 00001.jpg, ...)."""
        d = self.image_dir / seq
        if not d.is_dir():
            raise DataError(d, f"sequence {seq!r} has no frame folder")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            raise DataError(d, "no frames (*.jpg) in the sequence folder")
        return files

    def annotation(self, seq: str, frame_idx: int = 0) -> Path:
        """Annotation PNG of frame ``frame_idx`` (same stem as the frame file)."""
        frames = self.frames(seq)
        if not -len(frames) <= frame_idx < len(frames):
            raise DataError(self.image_dir / seq, f"frame index {frame_idx} out of range ({len(frames)} frames)")
        path = self.annotation_dir / seq / (frames[frame_idx].stem + ".png")
        if not path.is_file():
            raise DataError(path, f"annotation of frame {frame_idx} of {seq!r} is missing")
        return path

    # --------------------------------------------------------------- pixels
    def read_frame(self, seq: str, idx: int) -> np.ndarray:
        """Frame ``idx`` as uint8 (H, W, 3) RGB."""
        return read_image(self.frames(seq)[idx])

    def read_mask(self, seq: str, idx: int = 0, mode: str | int = "2017") -> np.ndarray:
        """Ground truth of frame ``idx`` as int64 (H, W): ids (2017) or merged 0/1 (2016); void -> 0."""
        return self.convert_mask(read_mask(self.annotation(seq, idx)), mode)

    @staticmethod
    def convert_mask(raw: np.ndarray, mode: str | int) -> np.ndarray:
        """Apply the year convention to a raw label map (see the module docstring)."""
        mode = _mode(mode)
        valid = raw != VOID
        if mode == "2016":
            return ((raw > 0) & valid).astype(np.int64)
        return np.where(valid, raw, 0).astype(np.int64)

    def read_pair(self, seq: str, idx: int, mode: str | int = "2017") -> tuple[np.ndarray, np.ndarray]:
        """Frame and mask of ``idx``; DataError naming the mask if their sizes differ."""
        img_path, mask_path = self.frames(seq)[idx], self.annotation(seq, idx)
        image, raw = read_image(img_path), read_mask(mask_path)
        if image.shape[:2] != raw.shape[:2]:
            raise DataError(
                mask_path,
                f"mask size {raw.shape[1]}x{raw.shape[0]} differs from frame {img_path} "
                f"size {image.shape[1]}x{image.shape[0]}",
            )
        return image, self.convert_mask(raw, mode)

    def first_frame_pair(self, seq: str, mode: str | int = "2017") -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 HxWx3, mask int64 HxW) of frame 0, checked: same size, non-empty mask."""
        img_path, mask_path = self.frames(seq)[0], self.annotation(seq, 0)
        image, raw = read_image(img_path), read_mask(mask_path)
        check_pair(img_path, image, mask_path, raw)
        return image, self.convert_mask(raw, mode)

    def num_objects(self, seq: str) -> int:
        """Number of objects = largest id in the first mask (DAVIS-2017 convention, STM)."""
        return int(self.read_mask(seq, 0, "2017").max())
