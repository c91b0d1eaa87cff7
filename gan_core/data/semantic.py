"""Semantic-image-synthesis datasets for OASIS (thesis Chapter 4, l.1112-1121).

One :class:`SemanticDataset`; the per-dataset differences (where the pairs are, how a label PNG becomes class
indices, the default ``semantic_nc``) live in the table :data:`LAYOUTS`, chosen by
``SemanticDataConfig.dataset``. Label index 0 is "unknown / dontcare" in every layout (reference notes §1.6);
a label value outside the layout is a :class:`DataError` naming the file.

* ``ade20k`` (reference notes §1.6): ``<root>/images/{training,validation}/*.jpg`` and
  ``<root>/annotations/{training,validation}/*.png`` (``root`` = ``ADEChallengeData2016``), label PNGs of indices
  0..150: 150 classes plus 0 = "unknown" / dontcare (semantic_nc = 151), used as they are.
* ``ade_outdoor``: the ADE20K layout restricted to a FILE LIST (``SemanticDataConfig.subset_list``, one image stem
  per line). Thesis l.1112: "Following Qi et al. (2018), we also evaluate OASIS on ADE20K-outdoors, the subset of
  ADE20K containing only outdoor scenes" (l.1296: 110 classes). No official list exists: the thesis author
  (boschresearch/OASIS issue #23) built it by keeping images with indicative classes ("sky", "mountain",
  "earth"), dropping obvious indoor classes ("ceiling", "bed", "sink") and then skimming the images by hand
  (about 10k train / 1k val). That manual step makes the list underivable here, so it must be supplied; we never
  generate one. Labels keep the ADE20K indices (semantic_nc 151; the thesis gives no re-indexing).
* ``cityscapes`` (reference notes §1.6): ``<root>/leftImg8bit/{train,val}/<city>/<base>_leftImg8bit.png`` with
  ``<root>/gtFine/{train,val}/<city>/<base>_gtFine_labelIds.png``; the 34 label ids plus 0 = unlabeled are kept
  as they are (label_nc 34, semantic_nc 35; 0 is the dontcare class of the official loader). Sorted by
  (city, file name). The 35 -> 19 trainId mapping belongs to the DRN evaluation, not to training.
* ``coco`` (alias ``cocostuff``; COCO-Stuff): either the official OASIS / SPADE layout
  ``<root>/{train,val}_img/*.jpg`` + ``<root>/{train,val}_label/*.png`` or the cocostuff-164k layout
  ``<root>/images/{train2017,val2017}/*.jpg`` + ``<root>/annotations/{train2017,val2017}/*.png`` (nightrome/cocostuff
  README: stuffthingmaps hold indices 0-181, 255 = unlabeled). Reference notes §1.6: the official loader computes
  ``label = png*255 + 1`` on the ToTensor-scaled map, i.e. raw k -> k + 1 and 255 -> 256 -> 0 = dontcare
  (label_nc 182, semantic_nc 183). After the shift a class index equals the COCO-Stuff category id (1..182).
* ``lvis``: ``<root>/images/{train2017,val2017}/*.jpg`` (COCO 2017 images; LVIS v1 draws both its splits from
  them) + ``<root>/lvis_labels/{train,val}/*.png``, 16-bit label maps written by :mod:`gan_core.data.lvis` from
  the LVIS v1 instance json (category id -> index 1..1203 in sorted-id order, 0 = background / unlabelled,
  later instances overwrite earlier ones; semantic_nc 1204). Thesis l.1119: 1203 classes, 128x128.

Pre-processing: the image is resized to the training resolution (bicubic, as the official loader) and the
label map with nearest neighbour; training samples are flipped horizontally with probability 1/2.
Our simplification: the official ADE20K / COCO loaders first resize to 286x286 and take a random 256 crop
(reference notes §1.6); we resize straight to the training resolution (the thesis, l.1112, gives only the
resolution). Cityscapes is resized to 256x512 without a crop in the official loader too.

Determinism: which image and whether it is flipped are decided by :class:`ResumableStreamSampler` from
(seed, epoch, position) alone, never by a worker's RNG, so that a resumed run draws the same batches and
DataLoader workers (``num_workers``) do not change the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, DataError, MissingResourceError
from ..utils.images import _open, read_image

SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}
SHORT_SPLIT = {"training": "train", "validation": "val"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
COCOSTUFF_UNLABELED = 255  # stuffthingmaps "unlabeled" (nightrome/cocostuff README)
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelIds.png"
LVIS_LABEL_DIR = "lvis_labels"
LVIS_SEMANTIC_NC = 1204  # LVIS v1: 1203 categories (thesis l.1117) + 0 = background / unlabelled


# ------------------------------------------------------------------------------------------ label maps
def _index_png(path: str | Path) -> np.ndarray:
    """The raw indices of a label PNG (mode L / P / I / I;16) as int64 (H, W)."""
    img = _open(path)
    if img.mode not in ("L", "P", "I", "I;16"):
        raise DataError(path, f"label map must be a grayscale or palette PNG of class indices, got mode {img.mode!r}")
    arr = np.asarray(img).astype(np.int64)
    if arr.size == 0:
        raise DataError(path, "label map has zero size")
    return arr


def read_label_map(path: str | Path, semantic_nc: int) -> np.ndarray:
    """An index PNG (mode L / P / I) as int64 (H, W); values must lie in 0..semantic_nc-1."""
    arr = _index_png(path)
    top, low = int(arr.max()), int(arr.min())
    if low < 0 or top >= semantic_nc:
        raise DataError(path, f"label value {top if top >= semantic_nc else low} outside 0..{semantic_nc - 1} "
                              f"(semantic_nc={semantic_nc}: {semantic_nc - 1} classes + 0 = dontcare)")
    return arr


def read_cocostuff_label(path: str | Path, semantic_nc: int) -> np.ndarray:
    """A COCO-Stuff map (raw 0..semantic_nc-2 = category id - 1, 255 = unlabeled) as class indices:
    raw k -> k + 1, 255 -> 0 = dontcare (reference notes §1.6: official ``label = png*255 + 1``, 256 -> 0)."""
    raw = _index_png(path)
    bad = (raw != COCOSTUFF_UNLABELED) & ((raw < 0) | (raw > semantic_nc - 2))
    if bad.any():
        raise DataError(path, f"COCO-Stuff label value {int(raw[bad].flat[0])} is neither in 0..{semantic_nc - 2} "
                              f"(category id - 1) nor {COCOSTUFF_UNLABELED} (unlabeled); semantic_nc={semantic_nc}")
    out = raw + 1
    out[raw == COCOSTUFF_UNLABELED] = 0
    return out


# ------------------------------------------------------------------------------------------ pair listers
def _short_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return SHORT_SPLIT[SPLITS[split]]


def _stem_pairs(img_dir: Path, lab_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label) pairs of two flat folders matched by file stem, sorted by stem; every image needs a label."""
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    labels = {p.stem: p for p in sorted(lab_dir.iterdir()) if p.suffix.lower() == ".png"}
    if not images:
        raise DataError(img_dir, "no images (.jpg/.png) found")
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(lab_dir / f"{missing[0]}.png", f"label map missing ({len(missing)} images without one)")
    return [(images[s], labels[s]) for s in sorted(images)]


def ade20k_pairs(root: str | Path, split: str, cfg: "SemanticDataConfig | None" = None) -> list[tuple[Path, Path]]:
    """(image, label) paths of an ADE20K-layout split, sorted by file stem; every image needs a label PNG."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    root = Path(root)
    img_dir, lab_dir = root / "images" / SPLITS[split], root / "annotations" / SPLITS[split]
    for d in (img_dir, lab_dir):
        if not d.is_dir():
            raise MissingResourceError(f"ADE20K-layout folder ({split})", d, "fetch_ade20k",
                                       hint="(tiny preset: the rule embedded_semantic builds one)")
    return _stem_pairs(img_dir, lab_dir)


def read_stem_list(path: str | Path | None, what: str = "ADE20K-outdoor image list") -> list[str]:
    """Stems from a text file, one per line (``#`` comments and blank lines skipped; a folder or an
    extension, e.g. ``training/ADE_train_00000001.jpg``, is stripped). Duplicates are a DataError."""
    if path is None or str(path) == "":
        raise ConfigError(
            "dataset 'ade_outdoor' needs SemanticDataConfig.subset_list: a text file with one ADE20K image stem per "
            "line (e.g. ADE_train_00000001), covering the outdoor images of both splits. No official list exists "
            "(boschresearch/OASIS issue #23: the thesis author filtered by classes such as sky/mountain/earth vs "
            "ceiling/bed/sink and then by hand), so it cannot be derived here; supply the list you use")
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(what, path, None, hint="Provide a text file with one ADE20K image stem per line "
                                                          "(e.g. ADE_train_00000001); it is not derivable here.")
    stems, seen = [], {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        stem = Path(line).name
        if Path(stem).suffix.lower() in IMAGE_SUFFIXES:
            stem = Path(stem).stem
        if stem in seen:
            raise DataError(path, f"line {n}: stem {stem!r} already listed on line {seen[stem]}")
        seen[stem] = n
        stems.append(stem)
    if not stems:
        raise DataError(path, f"{what} lists no image stem")
    return stems


def ade_outdoor_pairs(root: str | Path, split: str, cfg: "SemanticDataConfig") -> list[tuple[Path, Path]]:
    """The ADE20K pairs of ``split`` whose stem is in ``cfg.subset_list``. A listed stem found in neither split's
    image folder is a DataError (typo / wrong dataset version); so is a split with no listed image."""
    wanted = read_stem_list(cfg.subset_list)
    pairs = ade20k_pairs(root, split)
    wanted_set = set(wanted)
    chosen = [p for p in pairs if p[0].stem in wanted_set]
    known = {img.stem for img, _ in pairs}
    other = Path(root) / "images" / ("validation" if SPLITS[split] == "training" else "training")
    if other.is_dir():
        known |= {p.stem for p in other.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise DataError(cfg.subset_list, f"{len(unknown)} listed stem(s) are in neither ADE20K split under "
                                             f"{root}, e.g. {unknown[0]!r}")
    if not chosen:
        raise DataError(cfg.subset_list, f"no listed stem is an image of the {split} split "
                                         f"({Path(root) / 'images' / SPLITS[split]})")
    return chosen


def cityscapes_pairs(root: str | Path, split: str, cfg: "SemanticDataConfig | None" = None
                     ) -> list[tuple[Path, Path]]:
    """(leftImg8bit image, gtFine labelIds) pairs of a Cityscapes split, sorted by (city, file name)."""
    s, root = _short_split(split), Path(root)
    img_dir, lab_dir = root / "leftImg8bit" / s, root / "gtFine" / s
    for d, target in ((img_dir, "fetch_cityscapes_leftimg8bit"), (lab_dir, "fetch_cityscapes_gtfine")):
        if not d.is_dir():
            raise MissingResourceError(
                f"Cityscapes-layout folder ({s})", d, target,
                hint="(manual download after login, see the manifest notes; expected <root>/leftImg8bit/{train,val}/"
                     "<city>/*_leftImg8bit.png and <root>/gtFine/{train,val}/<city>/*_gtFine_labelIds.png; tiny "
                     "preset: python -m gan_core.data.embedded_ade_cli --layout cityscapes)")
    images = sorted(img_dir.glob(f"*/*{CITYSCAPES_IMAGE_SUFFIX}"))
    if not images:
        raise DataError(img_dir, f"no <city>/*{CITYSCAPES_IMAGE_SUFFIX} images found")
    pairs, missing = [], []
    for img in images:
        lab = lab_dir / img.parent.name / (img.name[: -len(CITYSCAPES_IMAGE_SUFFIX)] + CITYSCAPES_LABEL_SUFFIX)
        (pairs if lab.is_file() else missing).append((img, lab))
    if missing:
        raise DataError(missing[0][1], f"label map missing ({len(missing)} images without one)")
    return pairs


def coco_pairs(root: str | Path, split: str, cfg: "SemanticDataConfig | None" = None) -> list[tuple[Path, Path]]:
    """(image, label) pairs of COCO-Stuff in the OASIS/SPADE layout or the cocostuff-164k layout, by stem."""
    s, root = _short_split(split), Path(root)
    layouts = (("OASIS/SPADE layout", root / f"{s}_img", root / f"{s}_label"),
               ("cocostuff-164k layout", root / "images" / f"{s}2017", root / "annotations" / f"{s}2017"))
    for _, img_dir, lab_dir in layouts:
        if img_dir.is_dir() and lab_dir.is_dir():
            return _stem_pairs(img_dir, lab_dir)
    for kind, img_dir, lab_dir in layouts:
        if img_dir.is_dir() or lab_dir.is_dir():
            gone = lab_dir if img_dir.is_dir() else img_dir
            target = "fetch_cocostuff_stuffthingmaps" if gone == lab_dir else f"fetch_coco2017_{s}_images"
            raise MissingResourceError(f"COCO-Stuff folder ({kind}, {s})", gone,
                                       target if kind.startswith("cocostuff") else None)
    raise MissingResourceError(
        f"COCO-Stuff folders ({s})", root / "images" / f"{s}2017", f"fetch_coco2017_{s}_images",
        hint=f"Expected {root}/{s}_img + {root}/{s}_label (OASIS/SPADE layout) or {root}/images/{s}2017 + "
             f"{root}/annotations/{s}2017 (cocostuff-164k layout: fetch_cocostuff_stuffthingmaps for the labels; "
             "tiny preset: python -m gan_core.data.embedded_ade_cli --layout cocostuff).")


def lvis_pairs(root: str | Path, split: str, cfg: "SemanticDataConfig | None" = None) -> list[tuple[Path, Path]]:
    """(COCO 2017 image, LVIS label map) pairs: every ``<root>/lvis_labels/<split>/X.png`` with its image
    ``X.jpg`` from ``<root>/images/train2017`` or ``val2017``; sorted by stem."""
    s, root = _short_split(split), Path(root)
    lab_dir = root / LVIS_LABEL_DIR / s
    if not lab_dir.is_dir():
        raise MissingResourceError(f"LVIS label maps ({s})", lab_dir, f"fetch_lvis_v1_{s}_annotations",
                                   hint=f"then write them with: python -m gan_core.data.lvis_cli --json "
                                        f"<lvis_v1_{s}.json> --split {s} --root {root}")
    img_dirs = [root / "images" / "train2017", root / "images" / "val2017"]
    if not any(d.is_dir() for d in img_dirs):
        raise MissingResourceError("COCO 2017 images for LVIS", img_dirs[0], "fetch_coco2017_train_images",
                                   hint=f"(and {img_dirs[1]}: fetch_coco2017_val_images)")
    images: dict[str, Path] = {}
    for d in img_dirs:
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    images.setdefault(p.stem, p)
    labels = sorted(p for p in lab_dir.iterdir() if p.suffix.lower() == ".png")
    if not labels:
        raise DataError(lab_dir, "no LVIS label maps (.png) found")
    missing = [lab for lab in labels if lab.stem not in images]
    if missing:
        raise DataError(missing[0], f"no COCO image {missing[0].stem}.jpg in {img_dirs[0]} or {img_dirs[1]} "
                                    f"({len(missing)} label maps without an image)")
    return [(images[lab.stem], lab) for lab in labels]


def _label_stem(image: Path, label: Path) -> str:
    return label.stem


def _cityscapes_name(image: Path, label: Path) -> str:
    return image.name[: -len(CITYSCAPES_IMAGE_SUFFIX)]


@dataclass(frozen=True)
class Layout:
    """How one dataset is stored: pair lister, label reader (PNG -> class indices), default semantic_nc."""

    semantic_nc: int
    pairs: Callable[..., list[tuple[Path, Path]]]
    read_label: Callable[[str | Path, int], np.ndarray] = read_label_map
    name: Callable[[Path, Path], str] = _label_stem  # output name of a pair (unique within a split)


# semantic_nc per layout: reference notes §1.6 (ADE20K 151, Cityscapes 35, COCO-Stuff 183); LVIS 1203 + 1.
LAYOUTS: dict[str, Layout] = {
    "ade20k": Layout(151, ade20k_pairs),
    "ade_outdoor": Layout(151, ade_outdoor_pairs),
    "cityscapes": Layout(35, cityscapes_pairs, name=_cityscapes_name),
    "coco": Layout(183, coco_pairs, read_label=read_cocostuff_label),
    "lvis": Layout(LVIS_SEMANTIC_NC, lvis_pairs),
}
ALIASES = {"cocostuff": "coco"}  # workflow config name of COCO-Stuff


def layout_of(dataset: str) -> Layout:
    name = ALIASES.get(dataset, dataset)
    if name not in LAYOUTS:
        raise ConfigError(f"unknown semantic dataset {dataset!r}; known: {sorted(LAYOUTS) + sorted(ALIASES)}")
    return LAYOUTS[name]


@dataclass
class SemanticDataConfig:
    dataset: str = "ade20k"             # a key of LAYOUTS (or an alias)
    semantic_nc: int | None = None      # None = the layout's (ADE20K 151 = 150 classes + dontcare 0, §1.6)
    size: tuple[int, int] = (256, 256)  # (H, W) training resolution (thesis l.1112)
    flip: bool = True                   # horizontal flip p=0.5 for training (official loader)
    subset_list: str | None = None      # ade_outdoor only: text file of ADE20K image stems (module docstring)

    def __post_init__(self) -> None:
        layout = layout_of(self.dataset)
        if self.semantic_nc is None:
            self.semantic_nc = layout.semantic_nc
        if int(self.semantic_nc) < 2:
            raise ConfigError(f"SemanticDataConfig.semantic_nc must be >= 2, got {self.semantic_nc}")


class SemanticDataset(Dataset):
    """Items: {"image": float (3, H, W) in [-1, 1], "label": int64 (H, W), "index": int}.

    ``dataset[i]`` returns pair i unflipped; ``dataset[(i, flip)]`` applies the sampler's flip decision."""

    def __init__(self, root: str | Path, split: str, cfg: SemanticDataConfig):
        self.cfg = cfg
        self.layout = layout_of(cfg.dataset)
        self.pairs = self.layout.pairs(Path(root), split, cfg)
        self.split = split

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [self.layout.name(img, lab) for img, lab in self.pairs]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 image (H, W, 3), int64 label (H, W)) at the training resolution."""
        img_path, lab_path = self.pairs[index]
        image = read_image(img_path)
        label = self.layout.read_label(lab_path, self.cfg.semantic_nc)
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
