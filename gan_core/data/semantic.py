"""Semantic-image-synthesis datasets for OASIS (thesis Chapter 4, l.1112-1119).

ADE20K layout (reference notes §1.6, official-implementations.md "Data"):
``<root>/images/{training,validation}/*.jpg`` and ``<root>/annotations/{training,validation}/*.png``
(``root`` = ``ADEChallengeData2016``), label PNGs of indices 0..150: 150 classes plus 0 = "unknown" /
dontcare (semantic_nc = 151). A label value >= ``semantic_nc`` is a :class:`DataError` naming the file.

Pre-processing: the image is resized to the training resolution (bicubic, as the official loader) and the
label map with nearest neighbour; training samples are flipped horizontally with probability 1/2.
Our simplification: the official ADE20K loader first resizes to 286x286 and takes a random 256 crop
(reference notes §1.6); we resize straight to the training resolution (the thesis, l.1112, gives only the
resolution, 256x256). Cityscapes and COCO-Stuff are not built yet (:func:`open_dataset` says so).

Determinism: which image and whether it is flipped are decided by :class:`ResumableStreamSampler` from
(seed, epoch, position) alone, never by a worker's RNG, so that a resumed run draws the same batches and
DataLoader workers (``num_workers``) do not change the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, DataError, MissingResourceError
from ..utils.images import _open, read_image

SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}
NOT_BUILT = {
    "cityscapes": "Cityscapes loader (leftImg8bit / gtFine *_labelIds.png, 256x512) is not built yet",
    "coco": "COCO-Stuff loader ({train,val}_img / _label, label = png + 1, 255 -> dontcare) is not built yet",
    "lvis": "LVIS loader is not built yet (the official one is unfinished, reference notes §1.6)",
}


def read_label_map(path: str | Path, semantic_nc: int) -> np.ndarray:
    """An index PNG (mode L / P / I) as int64 (H, W); values must lie in 0..semantic_nc-1."""
    img = _open(path)
    if img.mode not in ("L", "P", "I", "I;16"):
        raise DataError(path, f"label map must be a grayscale or palette PNG of class indices, got mode {img.mode!r}")
    arr = np.asarray(img).astype(np.int64)
    if arr.size == 0:
        raise DataError(path, "label map has zero size")
    top, low = int(arr.max()), int(arr.min())
    if low < 0 or top >= semantic_nc:
        raise DataError(path, f"label value {top if top >= semantic_nc else low} outside 0..{semantic_nc - 1} "
                              f"(semantic_nc={semantic_nc}: {semantic_nc - 1} classes + 0 = dontcare)")
    return arr


def ade20k_pairs(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of an ADE20K-layout split, sorted by file stem; every image needs a label PNG."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    root = Path(root)
    img_dir, lab_dir = root / "images" / SPLITS[split], root / "annotations" / SPLITS[split]
    for d in (img_dir, lab_dir):
        if not d.is_dir():
            raise MissingResourceError(f"ADE20K-layout folder ({split})", d, "fetch_ade20k",
                                       hint="(tiny preset: the rule embedded_ade builds one)")
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    labels = {p.stem: p for p in sorted(lab_dir.iterdir()) if p.suffix.lower() == ".png"}
    if not images:
        raise DataError(img_dir, "no images (.jpg/.png) found")
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(lab_dir / f"{missing[0]}.png", f"label map missing ({len(missing)} images without one)")
    return [(images[s], labels[s]) for s in sorted(images)]


@dataclass
class SemanticDataConfig:
    dataset: str = "ade20k"
    semantic_nc: int = 151              # ADE20K: 150 classes + dontcare 0 (reference notes §1.6)
    size: tuple[int, int] = (256, 256)  # (H, W) training resolution (thesis l.1112)
    flip: bool = True                   # horizontal flip p=0.5 for training (official loader)


class SemanticDataset(Dataset):
    """Items: {"image": float (3, H, W) in [-1, 1], "label": int64 (H, W), "index": int}.

    ``dataset[i]`` returns pair i unflipped; ``dataset[(i, flip)]`` applies the sampler's flip decision."""

    def __init__(self, root: str | Path, split: str, cfg: SemanticDataConfig):
        if cfg.dataset in NOT_BUILT:
            raise ConfigError(f"dataset {cfg.dataset!r}: {NOT_BUILT[cfg.dataset]}")
        if cfg.dataset != "ade20k":
            raise ConfigError(f"unknown semantic dataset {cfg.dataset!r}")
        self.cfg = cfg
        self.pairs = ade20k_pairs(root, split)
        self.split = split

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [lab.stem for _, lab in self.pairs]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 image (H, W, 3), int64 label (H, W)) at the training resolution."""
        img_path, lab_path = self.pairs[index]
        image = read_image(img_path)
        label = read_label_map(lab_path, self.cfg.semantic_nc)
        if image.shape[:2] != label.shape:
            raise DataError(lab_path, f"label size {label.shape} differs from image {img_path} size {image.shape[:2]}")
        h, w = self.cfg.size
        if image.shape[:2] != (h, w):
            image = np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC))
            label = np.asarray(Image.fromarray(label.astype(np.int32)).resize((w, h), Image.NEAREST)).astype(np.int64)
        return image, label

    def __getitem__(self, key) -> dict:
        index, flip = (key if isinstance(key, tuple) else (key, False))
        image, label = self.load(int(index))
        if flip:
            image, label = image[:, ::-1], label[:, ::-1]
        img = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1.0
        return {"image": img, "label": torch.from_numpy(np.array(label)), "index": int(index)}


def one_hot(label: torch.Tensor, semantic_nc: int) -> torch.Tensor:
    """(B, H, W) int64 -> (B, N, H, W) float one-hot (the generator's and the loss' input)."""
    return torch.nn.functional.one_hot(label.long(), semantic_nc).permute(0, 3, 1, 2).float()


def mix_seed(*key: int) -> int:
    """A 63-bit seed from integers (splitmix-style), independent of any global RNG."""
    x = 0x9E3779B97F4A7C15
    for k in key:
        x = (x ^ (int(k) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class ResumableStreamSampler(Sampler):
    """DistributedSampler semantics (shuffle per epoch, rank-strided shards, drop_last) plus a start offset.

    Epoch ``e``'s permutation and flip bits come from ``mix_seed(seed, e)``; rank r takes positions
    r, r + world, ... of the permutation, truncated to a multiple of ``batch_size`` per rank. Yields
    ``(index, flip)`` keys for :class:`SemanticDataset`. ``set_epoch(e, start_batch)`` restarts inside an
    epoch (resume)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 flip: bool = True):
        if n < 1:
            raise ValueError("empty dataset")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.flip = rank, world_size, flip
        per_rank = n // world_size
        self.batches_per_epoch = per_rank // batch_size
        if self.batches_per_epoch < 1:
            raise ConfigError(f"batch_size {batch_size} x world_size {world_size} exceeds the {n} training images")
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def epoch_keys(self, epoch: int) -> list[tuple[int, bool]]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        perm = torch.randperm(self.n, generator=g).tolist()
        flips = (torch.rand(self.n, generator=g) < 0.5).tolist() if self.flip else [False] * self.n
        mine = perm[self.rank::self.world_size][: self.batches_per_epoch * self.batch_size]
        return [(i, bool(flips[i])) for i in mine]

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        keys = self.epoch_keys(self.epoch)
        return iter(keys[self.start_batch * self.batch_size:])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


def epochs_to_iterations(num_epochs: int, n_images: int, batch_size: int) -> int:
    """Thesis schedules are in epochs (l.1121); iterations = epochs x floor(N / global batch)."""
    return int(num_epochs) * max(1, math.floor(n_images / batch_size))
