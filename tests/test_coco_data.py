"""COCO-20i data preparation: official first-polygon label maps, category mapping, lists, support selection,
OSMIS support pairs, embedded COCO-format dataset (CPU, seconds)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from gan_core.data import coco
from gan_core.data.coco_cli import main as coco_main
from gan_core.data.embedded_coco import EmbeddedCocoConfig, generate
from gan_core.errors import DataError


def _cats(ids=(1, 2, 3, 5, 90)):
    return [{"id": i, "name": f"c{i}"} for i in ids]


def _instances(tmp_path, images, anns, cats=None):
    doc = {"images": images, "annotations": anns, "categories": cats or _cats()}
    path = tmp_path / "instances_val2014.json"
    path.write_text(json.dumps(doc))
    return path


# ------------------------------------------------------------------ rasterisation rule
def test_first_polygon_matches_hand_computed_mask():
    img = {"id": 1, "height": 8, "width": 10}
    ann = {"id": 7, "category_id": 2, "iscrowd": 0,
           # first polygon: right triangle (1,1)-(5,1)-(1,5) with float vertices truncated toward zero;
           # second polygon (a square at the right) must be ignored by the official rule
           "segmentation": [[1.9, 1.2, 5.7, 1.0, 1.0, 5.99], [7, 5, 9, 5, 9, 7, 7, 7]]}
    label = coco.semantic_label(img, [ann], coco.category_map(_cats()))
    expected = np.zeros((8, 10), np.uint8)
    for y in range(1, 6):           # row y holds x = 1 .. 6 - y (legs and the 45-degree hypotenuse included)
        expected[y, 1:7 - y] = 2
    assert np.array_equal(label, expected)


def test_later_instances_overwrite_earlier_and_crowd_is_skipped():
    img = {"id": 1, "height": 6, "width": 6}
    cmap = coco.category_map(_cats())
    a = {"id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]]}
    b = {"id": 2, "category_id": 3, "iscrowd": 0, "segmentation": [[2, 2, 5, 2, 5, 5, 2, 5]]}
    crowd = {"id": 3, "category_id": 5, "iscrowd": 1, "segmentation": {"counts": [0, 36], "size": [6, 6]}}
    label = coco.semantic_label(img, [a, b, crowd], cmap)
    assert (label[0:2, 0:5] == 1).all() and (label[2:6, 2:6] == 3).all() and label[4, 0] == 1
    assert 4 not in label                                    # the crowd (class index of id 5 = 4) is skipped
    label2 = coco.semantic_label(img, [b, a], cmap)          # order reversed: a now wins the overlap
    assert (label2[2:5, 2:5] == 1).all() and label2[5, 5] == 3
    assert coco.semantic_label(img, [crowd], cmap) is None   # no non-crowd annotation -> no label map


def test_category_mapping_is_position_in_the_category_list():
    cmap = coco.category_map([{"id": cid} for cid, _ in coco.COCO_CATEGORIES])
    assert len(cmap) == 80 and cmap[1] == 1 and cmap[11] == 11 and cmap[13] == 12 and cmap[90] == 80
    assert [cmap[c] for c in (27, 67, 70, 84)] == [25, 61, 62, 74]
    assert coco.category_map(_cats((5, 1))) == {5: 1, 1: 2}   # JSON order, as the official script
    with pytest.raises(DataError, match="twice"):
        coco.category_map(_cats((1, 1)))


def test_non_polygon_segmentation_of_a_non_crowd_instance_is_an_error(tmp_path):
    img = {"id": 1, "height": 4, "width": 4}
    ann = {"id": 9, "category_id": 1, "iscrowd": 0, "segmentation": {"counts": [0, 16], "size": [4, 4]}}
    with pytest.raises(DataError, match="annotation 9"):
        coco.semantic_label(img, [ann], {1: 1}, tmp_path / "x.json")


def test_write_labels_list_and_image_link(tmp_path):
    images = [{"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "height": 5, "width": 5},
              {"id": 1, "file_name": "COCO_val2014_000000000001.jpg", "height": 5, "width": 5},
              {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "height": 5, "width": 5}]
    anns = [{"id": 1, "image_id": 1, "category_id": 90, "iscrowd": 0, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
            {"id": 2, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]},
            {"id": 3, "image_id": 3, "category_id": 1, "iscrowd": 1, "segmentation": {"counts": [25], "size": [5, 5]}}]
    (tmp_path / "imgs").mkdir()
    path = _instances(tmp_path, images, anns)
    assert coco_main(["masks", "--annotations", str(path), "--images", str(tmp_path / "imgs"), "--split", "val",
                      "--root", str(tmp_path / "root")]) == 0
    lines = (tmp_path / "root" / "lists" / "val.txt").read_text().splitlines()
    assert lines == ["val2014/COCO_val2014_000000000001.jpg val/COCO_val2014_000000000001.png",
                     "val2014/COCO_val2014_000000000002.jpg val/COCO_val2014_000000000002.png"]  # 3: crowd only
    lab = np.asarray(Image.open(tmp_path / "root" / "val" / "COCO_val2014_000000000001.png"))
    assert lab.dtype == np.uint8 and (lab[0:3, 0:3] == 5).all() and lab.sum() == 9 * 5   # id 90 -> index 5
    assert (tmp_path / "root" / "val2014").resolve() == (tmp_path / "imgs").resolve()


# ------------------------------------------------------------------ support selection and pairs
def _label_set(tmp_path, labels):
    """Label PNGs + list; ``labels`` = {stem: label array}; images are random."""
    rng = np.random.default_rng(0)
    lines = []
    for stem, lab in labels.items():
        (tmp_path / "val2014").mkdir(exist_ok=True)
        (tmp_path / "val").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (*lab.shape, 3), dtype=np.uint8)).save(tmp_path / "val2014" / f"{stem}.jpg")
        Image.fromarray(lab.astype(np.uint8), "L").save(tmp_path / "val" / f"{stem}.png")
        lines.append(f"val2014/{stem}.jpg val/{stem}.png")
    (tmp_path / "lists").mkdir(exist_ok=True)
    (tmp_path / "lists" / "val.txt").write_text("\n".join(lines) + "\n")
    return tmp_path / "lists" / "val.txt"


def _labels():
    out = {}
    for i in range(8):                         # class 1 eligible (2048 px of 64x64) in im0..im7
        lab = np.zeros((64, 64), np.uint8)
        lab[:32] = 1
        out[f"im{i}"] = lab
    small = np.zeros((64, 64), np.uint8)
    small[:31, :] = 1                          # 1984 px < 2048: class 1 present but not eligible
    small[40:, :] = 5                          # class 5: 1536 px: not eligible either
    out["small"] = small
    return out


def test_support_selection_is_deterministic_and_respects_eligibility(tmp_path, caplog):
    lst = _label_set(tmp_path, _labels())
    with caplog.at_level(logging.WARNING):
        a = coco.select_supports(lst, tmp_path, fold=0, n=3, seed=0)
    b = coco.select_supports(lst, tmp_path, fold=0, n=3, seed=0)
    c = coco.select_supports(lst, tmp_path, fold=0, n=3, seed=1)
    assert a == b and len(a[1]) == 3 and "small" not in a[1]
    assert a[1] == sorted(a[1])                 # list order kept
    assert set(a) == set(range(1, 81, 4))       # every test class of fold 0 has an entry
    assert a[5] == [] and "fewer than 3 eligible" in caplog.text
    picks = {tuple(coco.select_supports(lst, tmp_path, 0, 3, s)[1]) for s in range(6)}
    assert len(picks) > 1 and c[1] in [list(p) for p in picks]
    assert coco.select_supports(lst, tmp_path, 0, 20, 0)[1] == [f"im{i}" for i in range(8)]   # fewer than n: all


def test_support_pool_file_is_read_by_repri(tmp_path):
    from downstream.repri.episodes import fold_classes, index_dataset, read_list, read_support_pool

    lst = _label_set(tmp_path, _labels())
    assert coco_main(["supports", "--root", str(tmp_path), "--list", str(lst), "--fold", "0", "--n", "2",
                      "--out", str(tmp_path / "pool.json")]) == 0
    pairs = coco.read_pairs(tmp_path / "pool.json")
    assert [p["class"] for p in pairs] == [1, 1] and pairs[0]["id"] == f"c1_{pairs[0]['stem']}"
    index = index_dataset(read_list(lst, tmp_path), fold_classes(0))
    pool = read_support_pool(tmp_path / "pool.json", index)
    assert sorted(index.items[i].stem for i in pool[1]) == sorted(p["stem"] for p in pairs)


def test_support_pair_mask_and_empty_class(tmp_path):
    lab = np.zeros((40, 50), np.uint8)
    lab[5:15, 10:30] = 1
    lab[20:30, 0:10] = 5
    lst = _label_set(tmp_path, {"a": lab})
    out = tmp_path / "pairs" / "c1_a"
    assert coco_main(["pair", "--root", str(tmp_path), "--list", str(lst), "--stem", "a", "--class", "1",
                      "--out-image", str(out / "image.png"), "--out-mask", str(out / "mask.png")]) == 0
    from gan_core.utils.images import read_image, read_mask
    m = read_mask(out / "mask.png")
    assert m.shape == (40, 50) and read_image(out / "image.png").shape == (40, 50, 3)   # original resolution
    assert set(np.unique(m)) == {0, 1} and m.sum() == 200 and m[5:15, 10:30].all()     # class 5 is background
    # a class without foreground in the image: defined error, no pair written
    with pytest.raises(DataError, match="class 9 has no pixel"):
        coco.write_support_pair(tmp_path / "val2014" / "a.jpg", tmp_path / "val" / "a.png", 9,
                                tmp_path / "x" / "image.png", tmp_path / "x" / "mask.png")
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ embedded dataset
def test_embedded_coco_runs_the_same_mask_code(tmp_path):
    cfg = EmbeddedCocoConfig(height=64, width=80, n_train=4, n_val=10, classes=(1, 2, 3, 4))
    root = generate(tmp_path / "emb", cfg)
    doc = json.loads((root / "annotations" / "instances_val2014.json").read_text())
    assert len(doc["categories"]) == 80 and len(doc["images"]) == 10
    assert any(a["iscrowd"] for a in doc["annotations"])
    assert any(len(a["segmentation"]) > 1 for a in doc["annotations"] if not a["iscrowd"])
    inst = coco.load_instances(root / "annotations" / "instances_val2014.json")
    lst = coco.write_labels(inst, tmp_path / "coco", "val", root / "val2014")
    assert len(lst.read_text().splitlines()) == 10
    first = doc["images"][0]
    lab = np.asarray(Image.open(tmp_path / "coco" / "val" / first["file_name"].replace(".jpg", ".png")))
    assert lab.shape == (64, 80) and set(np.unique(lab)) <= {0, 1, 2, 3, 4} and (lab > 0).any()
    # same parameters -> identical files
    again = generate(tmp_path / "emb2", cfg)
    for rel in ("annotations/instances_val2014.json", f"val2014/{first['file_name']}"):
        assert (root / rel).read_bytes() == (again / rel).read_bytes()
    with pytest.raises(DataError, match="refusing"):
        generate(tmp_path / "coco", cfg)
