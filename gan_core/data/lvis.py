"""LVIS v1 instance annotations -> semantic label maps for OASIS (thesis Sec. 4.3.3, l.1117-1119).

The thesis trains OASIS on LVIS (1203 classes, COCO images, 128x128; l.1117-1119); the official OASIS LVIS
loader is unfinished (reference notes §1.6), so the conversion below is our own, documented choice:

* Class index: the categories sorted by id, category id c -> 1 + its rank (LVIS v1 ids are 1..1203, so the
  index equals the id); 0 = background / unlabelled (every pixel no instance covers). semantic_nc = N + 1 = 1204
  for LVIS v1 (give ``semantic_nc: 1204`` to OASISConfig).
* Overlaps: instances are drawn in the file order of ``annotations`` and a later instance overwrites an earlier
  one (the same rule as the COCO-20i maps of :mod:`gan_core.data.coco`).
* Rasterisation: every polygon of an instance (LVIS instances may have several parts) is filled, interior and
  boundary, with :func:`gan_core.data.coco.fill_polygon` after truncating vertex coordinates to integers (as
  :func:`gan_core.data.coco.first_polygon`). LVIS v1 has no crowd / RLE annotations; an RLE segmentation is a
  DataError (no RLE decoder here).
* Label maps are written at the image's own resolution (``height`` x ``width`` of the json) as 16-bit PNGs
  (indices up to 1203 do not fit 8 bits) to ``<root>/lvis_labels/<split>/<stem>.png``; the dataset resizes them
  with nearest neighbour to the training resolution (128x128). ``stem`` is the COCO file stem (from
  ``coco_url`` / ``file_name``), so the image is ``<root>/images/{train2017,val2017}/<stem>.jpg``.
* Images without any annotation get no label map (our choice, as for COCO-20i: an all-background map carries
  no layout to synthesise); their number is recorded in ``<root>/lvis_labels/<split>.json``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError
from ..utils.atomic import atomic_path, write_json
from ..utils.jsonfile import read_json
from .coco import fill_polygon
from .semantic import LVIS_LABEL_DIR

SPLITS = ("train", "val")


def category_index(categories: Sequence[dict], path: str | Path = "<categories>") -> dict[int, int]:
    """Category id -> class index 1..N in ascending-id order (0 stays background)."""
    ids = []
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise DataError(path, f"categories[{i}] has no 'id'")
        ids.append(int(cat["id"]))
    if len(set(ids)) != len(ids):
        raise DataError(path, "a category id is listed twice")
    if len(ids) > 65534:
        raise DataError(path, f"{len(ids)} categories do not fit a 16-bit label map")
    return {cid: k + 1 for k, cid in enumerate(sorted(ids))}


def polygons(ann: dict, path: str | Path = "<annotations>") -> list[np.ndarray]:
    """The (n, 2) int32 vertex arrays of every polygon of an instance (coordinates truncated toward zero)."""
    seg = ann.get("segmentation")
    if not isinstance(seg, list) or not seg or not all(isinstance(p, list) for p in seg):
        raise DataError(path, f"annotation {ann.get('id')}: segmentation is not a list of polygons (got "
                              f"{type(seg).__name__}); RLE is not supported (LVIS v1 uses polygons only)")
    out = []
    for poly in seg:
        pts = np.asarray(poly, dtype=np.float64)
        if pts.size < 2 or pts.size % 2:
            raise DataError(path, f"annotation {ann.get('id')}: polygon has an odd number of coordinates")
        out.append(pts.reshape(-1, 2).astype(np.int32))
    return out


def semantic_label(image: dict, anns: Iterable[dict], class_of: dict[int, int],
                   path: str | Path = "<annotations>") -> np.ndarray | None:
    """uint16 (H, W) label map of one image (later instances overwrite earlier), or None without annotations."""
    h, w = int(image["height"]), int(image["width"])
    label = np.zeros((h, w), np.uint16)
    n = 0
    for ann in anns:
        cid = int(ann["category_id"])
        if cid not in class_of:
            raise DataError(path, f"annotation {ann.get('id')}: unknown category id {cid}")
        for pts in polygons(ann, path):
            fill_polygon(label, pts, class_of[cid])
        n += 1
    return label if n else None


def image_stem(image: dict, path: str | Path = "<images>") -> str:
    """The COCO file stem of an LVIS image entry (``coco_url`` in LVIS v1, ``file_name`` otherwise)."""
    ref = image.get("coco_url") or image.get("file_name")
    if not ref:
        raise DataError(path, f"image {image.get('id')} has neither 'coco_url' nor 'file_name'")
    return Path(str(ref)).stem


def write_label(path: Path, label: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(label.astype(np.uint16)).save(tmp, format="PNG")


def export(json_path: str | Path, root: str | Path, split: str) -> Path:
    """Write ``root/lvis_labels/<split>/<stem>.png`` for every annotated image of an LVIS json and a summary
    ``root/lvis_labels/<split>.json``; returns the label folder."""
    if split not in SPLITS:
        raise ConfigError(f"LVIS split must be one of {SPLITS}, got {split!r}")
    json_path = Path(json_path)
    data = read_json(json_path, "LVIS annotation file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DataError(json_path, f"not an LVIS / COCO-format instances file: no list {key!r}")
    class_of = category_index(data["categories"], json_path)
    anns: dict[int, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        anns[int(ann["image_id"])].append(ann)
    out = Path(root) / LVIS_LABEL_DIR / split
    written, empty, stems = 0, 0, set()
    for img in data["images"]:
        stem = image_stem(img, json_path)
        if stem in stems:
            raise DataError(json_path, f"image stem {stem!r} appears twice")
        stems.add(stem)
        label = semantic_label(img, anns.get(int(img["id"]), []), class_of, json_path)
        if label is None:
            empty += 1
            continue
        write_label(out / f"{stem}.png", label)
        written += 1
    if not written:
        raise DataError(json_path, "no image has an annotation")
    write_json(Path(root) / LVIS_LABEL_DIR / f"{split}.json",
               {"source": str(json_path), "split": split, "written": written, "skipped_without_annotation": empty,
                "categories": len(class_of), "semantic_nc": len(class_of) + 1,
                "rule": "category id -> rank in sorted ids (1..N), 0 = background; file order, later instances "
                        "overwrite earlier; all polygons filled (gan_core/data/lvis.py)"})
    return out
