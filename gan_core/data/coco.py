"""COCO-20i data for RePRI (thesis Sec. 6.3.4-6.3.5, l.1822-1869; reference notes downstream-protocols §3.3).

* Semantic label maps from a COCO instances JSON with the rule of RePRI's ``data/coco/create_masks.py``
  (facts from the reference notes, code written anew): for every image, its NON-CROWD annotations in file order;
  of each one only the FIRST polygon (``segmentation[0]``) is filled, vertex coordinates truncated to integers;
  later instances overwrite earlier ones; pixel value = class index 1..80, 0 = background. Images without a
  non-crowd annotation get no label map and are not listed.
* Class index: 1 + the position of the category in the JSON ``categories`` list (the official script indexes
  the category *names* of ``loadCats(getCatIds())``, which is the JSON order; COCO's file lists the 80
  categories by ascending id, so index = rank of the category id: id 1 -> 1, ..., id 90 -> 80). The
  interleaved COCO-20i folds of RePRI/PFENet (``range(k+1, 81, 4)``) are defined on these indices.
* Rasterisation: the official script uses ``cv2.fillPoly`` (interior + boundary pixels); OpenCV is not a
  dependency here, so polygons are filled with Pillow's ``ImageDraw.polygon``, which also fills interior and
  boundary. Both agree on axis-aligned and 45-degree edges (tested against a hand-computed mask); on other
  slanted edges single boundary pixels may differ (documented deviation, sub-pixel).
* Image list: ``<split>2014/X.jpg <split>/X.png`` per line. The official ``lists/coco/val.txt`` (PFENet) has no
  published checksum and is not fetched; we generate it from the annotations: every image with at least one
  non-crowd annotation (40 137 for val2014, the official line count), sorted by file name. The official file's
  ORDER was not inspected; it matters only for which queries fall into which run (reference notes §3.2).
* Support selection (thesis l.1822: "we randomly selected 5 support samples for each test class, resulting in
  100 image-mask pairs in each of the folds"): per test class of the fold, ``n`` images drawn without
  replacement (fixed seed) among the images where the class is ELIGIBLE for RePRI (>= 2048 pixels, official
  ``process_image``), so every selected support can actually be drawn as a support. A class with fewer
  eligible images keeps all of them (warning); one with none gets an empty list (its episodes are skipped by
  the sampler, with a warning).
* OSMIS training pairs: one per (class, support image), the COCO image at its ORIGINAL resolution (thesis
  l.1835: "we try to closely fit the resolution of each image from COCO") and the binary mask of the class
  (0/1). A (class, image) with no pixel of the class raises DataError (never an empty training mask).
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError
from ..utils.atomic import atomic_path, write_json, write_text
from ..utils.images import read_image, write_image, write_mask
from ..utils.jsonfile import read_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
MIN_PIXELS = 2 * 32 * 32  # RePRI eligibility (official process_image), reference notes §3.2

# The 80 COCO object categories (id, name) in the order of instances_*2014.json (ascending id).
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"),
    (36, "snowboard"), (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"),
    (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"),
    (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"),
    (67, "dining table"), (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"),
    (76, "keyboard"), (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"),
)


# ------------------------------------------------------------------------------------------ annotations
@dataclass
class Instances:
    """A parsed instances JSON: images (JSON order), annotations per image id (JSON order), class indices."""

    path: Path
    images: list[dict]
    anns: dict[int, list[dict]]
    class_of: dict[int, int]  # category id -> class index 1..N


def category_map(categories: Sequence[dict], path: str | Path = "<categories>") -> dict[int, int]:
    """COCO category id -> class index 1..N = 1 + position in the JSON list (module docstring)."""
    out: dict[int, int] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise DataError(path, f"categories[{i}] has no 'id'")
        if int(cat["id"]) in out:
            raise DataError(path, f"category id {cat['id']} listed twice")
        out[int(cat["id"])] = i + 1
    if len(out) > 254:
        raise DataError(path, f"{len(out)} categories do not fit an 8-bit label map (255 = ignore)")
    return out


def load_instances(path: str | Path) -> Instances:
    path = Path(path)
    data = read_json(path, "COCO instances file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DataError(path, f"not a COCO instances file: no list {key!r}")
    anns: dict[int, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        anns[int(ann["image_id"])].append(ann)
    return Instances(path, list(data["images"]), dict(anns), category_map(data["categories"], path))


def first_polygon(ann: dict, path: str | Path = "<annotations>") -> np.ndarray:
    """The (n, 2) int32 vertices of ``segmentation[0]`` (official: ``np.array(seg).reshape(-1, 2)`` then
    ``astype(np.int32)``, i.e. truncation toward zero)."""
    seg = ann.get("segmentation")
    if not isinstance(seg, list) or not seg or not isinstance(seg[0], list):
        raise DataError(path, f"annotation {ann.get('id')}: non-crowd segmentation is not a polygon list "
                              f"(got {type(seg).__name__}); the official rule reads segmentation[0]")
    pts = np.asarray(seg[0], dtype=np.float64)
    if pts.size < 2 or pts.size % 2:
        raise DataError(path, f"annotation {ann.get('id')}: polygon has an odd number of coordinates")
    return pts.reshape(-1, 2).astype(np.int32)


def fill_polygon(label: np.ndarray, vertices: np.ndarray, value: int) -> None:
    """Fill the polygon (interior and boundary pixels) with ``value`` in place."""
    h, w = label.shape
    canvas = Image.new("L", (w, h), 0)
    pts = [(int(x), int(y)) for x, y in vertices]
    if len(pts) == 1:
        pts = pts * 2
    ImageDraw.Draw(canvas).polygon(pts, fill=1, outline=1)
    label[np.asarray(canvas, dtype=bool)] = value


def semantic_label(image: dict, anns: Iterable[dict], class_of: dict[int, int],
                   path: str | Path = "<annotations>") -> np.ndarray | None:
    """uint8 (H, W) label map of one image, or None when it has no non-crowd annotation (not written)."""
    h, w = int(image["height"]), int(image["width"])
    label = np.zeros((h, w), np.uint8)
    n = 0
    for ann in anns:
        if ann.get("iscrowd", 0):
            continue
        cid = int(ann["category_id"])
        if cid not in class_of:
            raise DataError(path, f"annotation {ann.get('id')}: unknown category id {cid}")
        fill_polygon(label, first_polygon(ann, path), class_of[cid])
        n += 1
    return label if n else None


def _write_label(path: Path, label: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(label, mode="L").save(tmp, format="PNG")


def write_labels(instances: Instances, root: str | Path, split: str, images_dir: str | Path | None = None) -> Path:
    """Write ``root/<split>/X.png`` for every image with a non-crowd annotation and the list
    ``root/lists/<split>.txt``; link ``root/<split>2014`` to ``images_dir`` when given. Returns the list path."""
    if split not in SPLITS:
        raise DataError(instances.path, f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    lines = []
    for img in sorted(instances.images, key=lambda im: im["file_name"]):
        label = semantic_label(img, instances.anns.get(int(img["id"]), []), instances.class_of, instances.path)
        if label is None:
            continue
        stem = Path(img["file_name"]).stem
        _write_label(root / split / f"{stem}.png", label)
        lines.append(f"{split}2014/{img['file_name']} {split}/{stem}.png")
    if not lines:
        raise DataError(instances.path, "no image has a non-crowd annotation")
    if images_dir is not None:
        link = root / f"{split}2014"
        target = Path(images_dir).resolve()
        if link.is_symlink() or link.exists():
            if link.resolve() != target:
                raise DataError(link, f"exists and does not point to {target}")
        else:
            os.symlink(target, link, target_is_directory=True)
    out = root / "lists" / f"{split}.txt"
    write_text(out, "\n".join(lines) + "\n")
    return out


# ------------------------------------------------------------------------------------------ supports
def select_supports(list_path: str | Path, root: str | Path, fold: int, n: int, seed: int = 0,
                    min_pixels: int = MIN_PIXELS) -> dict[int, list[str]]:
    """``n`` support image stems per test class of ``fold`` among the images where the class is eligible
    (>= ``min_pixels``), drawn with ``numpy.random.default_rng([seed, fold, class])``; list order kept."""
    # RePRI's own list reader, fold definition and eligibility (one implementation of the protocol).
    from downstream.repri.episodes import fold_classes, index_dataset, read_list

    if n < 1:
        raise DataError(list_path, f"number of supports per class must be >= 1, got {n}")
    index = index_dataset(read_list(list_path, root), fold_classes(fold), min_pixels)
    pool: dict[int, list[str]] = {}
    short = []
    for c in index.classes:
        cands = index.per_class[c]
        if len(cands) < n:
            short.append(f"{c}: {len(cands)}")
        rng = np.random.default_rng([int(seed), int(fold), int(c)])
        picked = sorted(rng.choice(len(cands), size=min(n, len(cands)), replace=False).tolist()) if cands else []
        pool[c] = [index.items[cands[i]].stem for i in picked]
    if short:
        log.warning("fold %d: %d class(es) have fewer than %d eligible images (class: count) %s; all of theirs "
                    "are used", fold, len(short), n, ", ".join(short))
    return pool


def pair_id(class_id: int, stem: str) -> str:
    return f"c{int(class_id)}_{stem}"


def write_support_pool(path: str | Path, pool: dict[int, list[str]], meta: dict[str, Any]) -> None:
    """``{"classes": {"<class>": [stems]}, "pairs": [{"id", "class", "stem"}], **meta}`` (the format read by
    :func:`downstream.repri.episodes.read_support_pool`)."""
    pairs = [{"id": pair_id(c, s), "class": int(c), "stem": s} for c in sorted(pool) for s in pool[c]]
    write_json(path, {**meta, "classes": {str(c): list(v) for c, v in sorted(pool.items())}, "pairs": pairs})


def read_pairs(pool_path: str | Path) -> list[dict]:
    data = read_json(pool_path, "support pool file")
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list):
        raise DataError(pool_path, "support pool file has no list 'pairs' (written by coco_cli supports)")
    return pairs


def find_item(list_path: str | Path, root: str | Path, stem: str):
    from downstream.repri.episodes import read_list

    for item in read_list(list_path, root):
        if item.stem == stem:
            return item
    raise DataError(list_path, f"image {stem!r} is not in the list")


def write_support_pair(image_path: str | Path, label_path: str | Path, class_id: int,
                       out_image: str | Path, out_mask: str | Path) -> int:
    """Write the OSMIS training pair of (class, image): the image at its original size and the binary mask.
    Returns the number of foreground pixels; raises DataError when the class is absent."""
    from downstream.repri.episodes import read_label

    image, label = read_image(image_path), read_label(label_path)
    if image.shape[:2] != label.shape:
        raise DataError(label_path, f"label size {label.shape[::-1]} differs from image {image_path} "
                                    f"size {image.shape[1::-1]}")
    mask = (label == int(class_id)).astype(np.uint8)
    n = int(mask.sum())
    if n == 0:
        raise DataError(label_path, f"class {class_id} has no pixel in this image: no OSMIS training pair "
                                    "can be made (the support selection only picks eligible images)")
    write_image(out_image, image)
    write_mask(out_mask, mask)
    return n


def write_synthetic_layout(pairs: list[dict], manifests: Sequence[str | Path], out: str | Path) -> Path:
    """Write ``out/<class>/<stem>/manifest.json`` for each support pair from its filtering manifest (same order as
    ``pairs``): the kept pairs with absolute paths (the layout read by ``repri_cli evaluate --synthetic``)."""
    from downstream.osvos.data import read_synthetic_manifest

    if len(pairs) != len(manifests):
        raise DataError(out, f"{len(pairs)} support pairs but {len(manifests)} synthetic manifests")
    out = Path(out)
    for pair, manifest in zip(pairs, manifests):
        kept = [{"image": str(Path(i).resolve()), "mask": str(Path(m).resolve())}
                for i, m in read_synthetic_manifest(manifest)]
        write_json(out / str(int(pair["class"])) / pair["stem"] / "manifest.json",
                   {"kept": kept, "source": str(manifest), "pair": pair["id"]})
    return out
