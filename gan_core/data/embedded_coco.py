"""A tiny, deterministic COCO-format instance dataset (tiny preset and tests of the COCO-20i pipeline).

Why: the tiny preset must run the SAME mask generation (``gan_core.data.coco``: first polygon of each non-crowd
instance, later overwrite earlier) and the same RePRI protocol as the paper preset, without the 19 GB COCO
download. Layout = the extracted COCO 2014 archives::

    ROOT/annotations/instances_{train,val}2014.json   images / annotations (polygons) / the 80 COCO categories
    ROOT/{train,val}2014/COCO_{split}2014_<id:012d>.jpg
    ROOT/embedded_coco.json                           parameters, source checksums and licences

Images: a tinted CC0 texture background (scikit-image samples, pinned by sha256 in ``embedded_davis``) with
1-2 objects. Every object is a regular polygon whose number of sides and tint depend on its class (so a small
network can learn the classes), with a random rotation. Each image has one large "primary" object (classes in
turn, so every class appears in several images with >= 2048 pixels at the default size) and, in every second
image, a smaller secondary object drawn on top. To exercise the official mask rule, some instances carry a
second polygon (drawn in the image, left out of the label map by the first-polygon rule) and every fifth image a
crowd annotation (RLE, drawn, skipped by the rule). Numbers on this data are NOT thesis numbers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..utils.atomic import replace_dir, atomic_path, write_text
from .coco import COCO_CATEGORIES, fill_polygon
from .embedded_davis import _BG_TINTS, SOURCE_LICENCES, _bilinear, _tint, load_sources

FORMAT_VERSION = 1
# Object tints per class (dark, light), disjoint in hue from the background tints.
_CLASS_TINTS = [((120, 30, 20), (250, 140, 90)), ((110, 60, 0), (255, 210, 60)), ((90, 20, 90), (240, 120, 230)),
                ((10, 30, 110), (120, 170, 255)), ((0, 90, 100), (90, 240, 240)), ((130, 0, 40), (255, 90, 150)),
                ((60, 60, 0), (230, 230, 120)), ((70, 0, 130), (190, 140, 255))]


@dataclass(frozen=True)
class EmbeddedCocoConfig:
    height: int = 120
    width: int = 160
    n_train: int = 16
    n_val: int = 24
    classes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    """Class indices 1..80 used (1..8 = two test classes in each COCO-20i fold: fold k holds k+1, k+5)."""
    seed: int = 0
    jpeg_quality: int = 95

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"embedded COCO: image size {self.height}x{self.width} is below 32x32")
        if self.n_train < 1 or self.n_val < 1:
            raise ConfigError("embedded COCO: need n_train >= 1 and n_val >= 1")
        if not self.classes or any(not 1 <= c <= 80 for c in self.classes) or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"embedded COCO: classes must be distinct indices in 1..80, got {self.classes}")


def _regular_polygon(rng: np.random.Generator, cy: float, cx: float, r: float, sides: int) -> list[float]:
    a0 = rng.uniform(0, 2 * np.pi)
    ang = a0 + 2 * np.pi * np.arange(sides) / sides
    xs, ys = cx + r * np.cos(ang), cy + r * np.sin(ang)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]  # COCO: [x1, y1, x2, y2, ...]


def _rle_rectangle(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> dict:
    """Uncompressed COCO RLE (column-major run lengths starting with background) of a rectangle."""
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    flat = m.flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return {"counts": counts, "size": [h, w]}


def _class_style(c: int) -> tuple[int, tuple]:
    return 3 + (c - 1) % 5, _CLASS_TINTS[(c - 1) % len(_CLASS_TINTS)]


def render_split(split: str, cfg: EmbeddedCocoConfig, src, first_image_id: int, first_ann_id: int):
    """Images (uint8) and the COCO dicts of one split."""
    H, W = cfg.height, cfg.width
    n = cfg.n_train if split == "train" else cfg.n_val
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    coco_id = {i + 1: cid for i, (cid, _) in enumerate(COCO_CATEGORIES)}
    images, infos, anns = [], [], []
    ann_id = first_ann_id
    for k in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0 if split == "train" else 1, k, FORMAT_VERSION]))
        img_id = first_image_id + k
        bg = src.textures[["grass", "gravel", "brick"][rng.integers(3)]]
        img = _tint(_bilinear(bg, yy * rng.uniform(2.0, 3.0) + rng.uniform(0, 512),
                              xx * rng.uniform(2.0, 3.0) + rng.uniform(0, 512)), _BG_TINTS[rng.integers(len(_BG_TINTS))])
        objects = [(cfg.classes[k % len(cfg.classes)], rng.uniform(0.36, 0.46))]
        if k % 2 == 1:
            objects.append((cfg.classes[int(rng.integers(len(cfg.classes)))], rng.uniform(0.16, 0.24)))
        for j, (c, rfrac) in enumerate(objects):
            r = rfrac * min(H, W)
            cy, cx = rng.uniform(r, H - r), rng.uniform(r, W - r)
            sides, tint = _class_style(c)
            polys = [_regular_polygon(rng, cy, cx, r, sides)]
            if j == 0 and k % 3 == 2:  # a second polygon: drawn, but not in the official label map
                polys.append(_regular_polygon(rng, rng.uniform(8, H - 8), rng.uniform(8, W - 8), 6.0, 4))
            tex = src.textures[["brick", "gravel"][c % 2]]
            fill = _tint(_bilinear(tex, yy * 1.5 + 17 * c, xx * 1.5 + 31 * c), tint)
            for poly in polys:
                m = np.zeros((H, W), np.uint8)
                fill_polygon(m, np.asarray(poly).reshape(-1, 2).astype(np.int32), 1)
                img[m.astype(bool)] = fill[m.astype(bool)]
            xs, ys = np.asarray(polys[0][0::2]), np.asarray(polys[0][1::2])
            anns.append({"id": ann_id, "image_id": img_id, "category_id": coco_id[c], "iscrowd": 0,
                         "segmentation": polys, "area": float(np.pi * r * r),
                         "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))]})
            ann_id += 1
        if k % 5 == 4:  # a crowd region (RLE): drawn, skipped by the official rule
            y0, x0 = int(rng.integers(0, H - 12)), int(rng.integers(0, W - 16))
            c = cfg.classes[int(rng.integers(len(cfg.classes)))]
            img[y0:y0 + 12, x0:x0 + 16] = np.asarray(_class_style(c)[1][1], np.float32)
            anns.append({"id": ann_id, "image_id": img_id, "category_id": coco_id[c], "iscrowd": 1,
                         "segmentation": _rle_rectangle(H, W, y0, y0 + 12, x0, x0 + 16), "area": 192.0,
                         "bbox": [float(x0), float(y0), 16.0, 12.0]})
            ann_id += 1
        name = f"COCO_{split}2014_{img_id:012d}.jpg"
        images.append((name, np.clip(np.rint(img), 0, 255).astype(np.uint8)))
        infos.append({"id": img_id, "file_name": name, "height": H, "width": W})
    return images, infos, anns


def write_dataset(root: str | Path, cfg: EmbeddedCocoConfig = EmbeddedCocoConfig()) -> Path:
    root = Path(root)
    src = load_sources()
    categories = [{"id": cid, "name": name, "supercategory": "embedded"} for cid, name in COCO_CATEGORIES]
    image_id, ann_id = 1, 1
    for split in ("train", "val"):
        images, infos, anns = render_split(split, cfg, src, image_id, ann_id)
        image_id += len(infos)
        ann_id += len(anns)
        for name, arr in images:
            with atomic_path(root / f"{split}2014" / name) as tmp:
                Image.fromarray(arr).save(tmp, format="JPEG", quality=cfg.jpeg_quality)
        doc = {"info": {"description": "embedded COCO-format data (tiny preset); NOT COCO"},
               "images": infos, "annotations": anns, "categories": categories}
        write_text(root / "annotations" / f"instances_{split}2014.json", json.dumps(doc) + "\n")
    meta = {"generator": "gan_core.data.embedded_coco", "format_version": FORMAT_VERSION,
            "config": dataclasses.asdict(cfg), "sources_sha256": src.sha256, "licences": SOURCE_LICENCES,
            "note": "Synthetic data for tests and the tiny preset; numbers on it are NOT thesis numbers."}
    write_text(root / "embedded_coco.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return root


def generate(out: str | Path, cfg: EmbeddedCocoConfig = EmbeddedCocoConfig()) -> Path:
    """Build in a temporary sibling and rename onto ``out``; an existing ``out`` is replaced only if it is an
    earlier embedded COCO dataset."""
    return replace_dir(out, "embedded_coco.json", "an embedded COCO dataset", lambda tmp: write_dataset(tmp, cfg))
