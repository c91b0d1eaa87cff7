"""A tiny synthetic semantic-scene dataset in the ADE20K folder layout (tiny preset of Table 4.1).

``<out>/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_XXXXXXXX.jpg`` and
``annotations/.../*.png`` (grayscale class indices). Classes 1..K (K = ``n_classes`` <= 6) are procedural
scene parts with class-dependent colours AND textures, so that a generator conditioned on the label map can
learn a visible mapping; label 0 (dontcare) marks a thin frame of "unlabelled" pixels, as ADE20K has:

    1 sky      vertical blue gradient          (top band, random horizon)
    2 ground   green-brown checker             (below the horizon)
    3 building grey with horizontal stripes    (rectangles standing on the horizon)
    4 tree     dark green with blotchy noise   (discs)
    5 water    blue-cyan with diagonal waves   (ellipse on the ground)
    6 object   red with dots                   (small rectangles)

Everything is drawn with numpy from ``seed``; nothing is downloaded. NOT ADE20K: numbers computed on it
prove the wiring only.

The same scenes (same ``seed`` -> same pictures and layouts) can be written in two more folder layouts read by
:class:`gan_core.data.semantic.SemanticDataset` (``layout`` argument of :func:`build`):

* ``cityscapes``: ``<out>/cityscapes/leftImg8bit/{train,val}/<city>/<city>_000000_XXXXXX_leftImg8bit.png`` and
  ``gtFine/.../<city>_000000_XXXXXX_gtFine_labelIds.png`` (two synthetic cities, ``synthA`` / ``synthB``,
  alternating), the tiny classes written as real Cityscapes labelIds (cityscapesScripts labels.py):
  0 -> 0 unlabeled, sky -> 23 sky, ground -> 7 road, building -> 11 building, tree -> 21 vegetation,
  water -> 22 terrain (Cityscapes has no water class; our choice), object -> 26 car. Every id but 0 has a
  trainId, so the 35 -> 19 evaluation mapping is exercised.
* ``cocostuff`` (cocostuff-164k layout): ``<out>/cocostuff/images/{train2017,val2017}/<12-digit id>.jpg`` and
  ``annotations/{train2017,val2017}/<id>.png`` holding stuffthingmaps values (COCO-Stuff category id - 1, 255 =
  unlabeled; nightrome/cocostuff labels.txt): 0 -> 255, sky -> 156 (sky-other 157), ground -> 123 (grass 124),
  building -> 95 (building-other 96), tree -> 168 (tree 169), water -> 177 (water-other 178), object -> 2
  (car 3). After the loader's shift (k -> k + 1, 255 -> 0) the class indices are the category ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..utils.atomic import atomic_path, write_json

MAX_CLASSES = 6
CLASS_NAMES = ("sky", "ground", "building", "tree", "water", "object")
LAYOUTS = ("ade20k", "cityscapes", "cocostuff")
ROOT_NAMES = {"ade20k": "ADEChallengeData2016", "cityscapes": "cityscapes", "cocostuff": "cocostuff"}  # under out/
# tiny class (0 = dontcare frame, 1..6) -> value written in the label PNG of each layout (module docstring)
CITYSCAPES_IDS = {0: 0, 1: 23, 2: 7, 3: 11, 4: 21, 5: 22, 6: 26}
COCOSTUFF_VALUES = {0: 255, 1: 156, 2: 123, 3: 95, 4: 168, 5: 177, 6: 2}
CITYSCAPES_CITIES = ("synthA", "synthB")
COCO_VAL_ID_OFFSET = 900000  # synthetic image ids: train 1..n, val 900001..; our choice (no real COCO id clash)


@dataclass
class EmbeddedADEConfig:
    n_train: int = 24
    n_val: int = 8
    height: int = 64
    width: int = 64
    n_classes: int = 6   # classes 1..n_classes; 0 = dontcare
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.n_classes <= MAX_CLASSES:
            raise ConfigError(f"embedded ADE n_classes must lie in 2..{MAX_CLASSES}, got {self.n_classes}")
        if min(self.height, self.width) < 16 or self.n_train < 1 or self.n_val < 1:
            raise ConfigError("embedded ADE: height/width >= 16 and n_train/n_val >= 1 required")


def _texture(cls: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 3) float texture in [0, 255] for class ``cls`` (1-based)."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    noise = rng.normal(0, 6, (h, w, 1))
    if cls == 1:    # sky: gradient
        t = (yy / max(h - 1, 1))[..., None]
        img = np.concatenate([90 + 80 * t, 140 + 70 * t, 230 + 0 * t], axis=2)
    elif cls == 2:  # ground: checker
        c = ((xx // 4 + yy // 4) % 2)[..., None]
        img = np.where(c, [110, 150, 60], [140, 110, 70]).astype(float)
    elif cls == 3:  # building: stripes
        s = ((yy // 3) % 2)[..., None]
        img = np.where(s, [150, 150, 155], [95, 95, 100]).astype(float)
    elif cls == 4:  # tree: blotches
        blot = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).repeat(4, 0).repeat(4, 1)[:h, :w, None]
        img = np.array([30, 100, 35], float) + 25 * blot
    elif cls == 5:  # water: diagonal waves
        wave = np.sin((xx + yy) / 2.0)[..., None]
        img = np.array([40, 120, 200], float) + 40 * wave * np.array([0.2, 1.0, 0.5])
    else:           # object: red with dots
        d = (((xx % 5) == 2) & ((yy % 5) == 2))[..., None]
        img = np.where(d, [250, 230, 200], [200, 30, 30]).astype(float)
    return np.clip(img + noise, 0, 255)


def make_scene(cfg: EmbeddedADEConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 (H, W, 3), label uint8 (H, W)) scene."""
    h, w, k = cfg.height, cfg.width, cfg.n_classes
    label = np.zeros((h, w), np.uint8)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    horizon = int(rng.uniform(0.3, 0.6) * h) + (np.sin(xx[0] / w * 2 * np.pi * rng.uniform(0.5, 2)) * 3).astype(int)
    label[:] = 2
    label[yy < horizon[None, :]] = 1
    if k >= 3:  # buildings on the horizon
        for _ in range(rng.integers(1, 3)):
            bw, bh = int(rng.uniform(0.15, 0.3) * w), int(rng.uniform(0.2, 0.4) * h)
            x0 = int(rng.integers(0, w - bw))
            base = int(horizon[x0:x0 + bw].max())
            label[max(base - bh, 0):base, x0:x0 + bw] = 3
    if k >= 5:  # water ellipse on the ground
        cy, cx = rng.uniform(0.75, 0.9) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.06, 0.12) * h, rng.uniform(0.15, 0.3) * w
        label[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 5
    if k >= 4:  # trees
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0, 1) * w, rng.uniform(0.06, 0.12) * min(h, w)
            label[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 4
    if k >= 6:  # small objects
        for _ in range(rng.integers(1, 3)):
            oh, ow = int(rng.uniform(0.08, 0.15) * h), int(rng.uniform(0.05, 0.1) * w)
            y0, x0 = int(rng.integers(h // 2, h - oh)), int(rng.integers(0, w - ow))
            label[y0:y0 + oh, x0:x0 + ow] = 6
    label[:1, :] = 0   # a thin unlabelled (dontcare) frame, as ADE20K's label 0
    label[:, :1] = 0
    image = np.zeros((h, w, 3), float)
    for c in range(1, k + 1):
        sel = label == c
        if sel.any():
            image[sel] = _texture(c, h, w, rng)[sel]
    image[label == 0] = rng.uniform(0, 255, 3)
    return image.astype(np.uint8), label


def _save(path: Path, arr: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        kwargs = {"quality": 95} if fmt == "JPEG" else {}
        Image.fromarray(arr).save(tmp, format=fmt, **kwargs)


def _recode(label: np.ndarray, table: dict[int, int]) -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for k, v in table.items():
        lut[k] = v
    return lut[label]


def _paths(root: Path, layout: str, split: str, i: int) -> tuple[Path, Path]:
    """(image, label) paths of scene ``i`` (0-based) of ``split`` ("train" / "val") in ``layout``."""
    if layout == "ade20k":
        name = f"{'ADE_train' if split == 'train' else 'ADE_val'}_{i + 1:08d}"
        folder = "training" if split == "train" else "validation"
        return root / "images" / folder / f"{name}.jpg", root / "annotations" / folder / f"{name}.png"
    if layout == "cityscapes":
        city = CITYSCAPES_CITIES[i % len(CITYSCAPES_CITIES)]
        base = f"{city}_000000_{i + 1:06d}"
        return (root / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png",
                root / "gtFine" / split / city / f"{base}_gtFine_labelIds.png")
    stem = f"{i + 1 + (COCO_VAL_ID_OFFSET if split == 'val' else 0):012d}"
    return root / "images" / f"{split}2017" / f"{stem}.jpg", root / "annotations" / f"{split}2017" / f"{stem}.png"


def build(out: str | Path, cfg: EmbeddedADEConfig, layout: str = "ade20k") -> Path:
    """Write the dataset under ``out/ADEChallengeData2016`` (``out/cityscapes``, ``out/cocostuff`` for the other
    layouts) and return that root, the ``root`` of :class:`gan_core.data.semantic.SemanticDataset`."""
    if layout not in LAYOUTS:
        raise ConfigError(f"embedded layout must be one of {LAYOUTS}, got {layout!r}")
    root = Path(out) / ROOT_NAMES[layout]
    table = {"ade20k": None, "cityscapes": CITYSCAPES_IDS, "cocostuff": COCOSTUFF_VALUES}[layout]
    rng = np.random.default_rng(cfg.seed)
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val)):
        for i in range(n):
            image, label = make_scene(cfg, rng)
            img_path, lab_path = _paths(root, layout, split, i)
            _save(img_path, image, "PNG" if img_path.suffix == ".png" else "JPEG")
            _save(lab_path, label if table is None else _recode(label, table), "PNG")
    classes = {i + 1: CLASS_NAMES[i] for i in range(cfg.n_classes)}
    if layout == "ade20k":
        write_json(root / "embedded.json", {"generator": "gan_core.data.embedded_ade", "config": vars(cfg),
                                            "classes": classes,
                                            "note": "synthetic tiny-preset data in the ADE20K layout; NOT ADE20K"})
    else:
        write_json(root / "embedded.json", {
            "generator": "gan_core.data.embedded_ade", "config": vars(cfg), "layout": layout, "classes": classes,
            "label_values": {CLASS_NAMES[k - 1] if k else "dontcare": table[k] for k in range(cfg.n_classes + 1)},
            "note": f"synthetic tiny-preset data in the {layout} layout; NOT {layout}"})
    return root
