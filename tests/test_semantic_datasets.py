"""Chapter-4 dataset layouts of SemanticDataset: Cityscapes, COCO-Stuff, ADE20K-outdoor, LVIS, and the embedded
tiny scenes written in those layouts (gan_core/data/semantic.py, lvis.py, embedded_ade.py)."""
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from downstream.deeplab.data import CITYSCAPES_TRAIN_IDS
from gan_core.data import lvis
from gan_core.data.embedded_ade import CITYSCAPES_IDS, COCOSTUFF_VALUES, EmbeddedADEConfig, build
from gan_core.data.embedded_ade_cli import main as embedded_main
from gan_core.data.lvis_cli import main as lvis_main
from gan_core.data.semantic import (LAYOUTS, SemanticDataConfig, SemanticDataset, ade20k_pairs, cityscapes_pairs,
                                    coco_pairs, lvis_pairs, read_cocostuff_label, read_label_map)
from gan_core.errors import ConfigError, DataError, MissingResourceError

CFG = EmbeddedADEConfig(n_train=4, n_val=2, height=32, width=64, n_classes=6, seed=2)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = tmp_path_factory.mktemp("layouts")
    return {layout: build(out, CFG, layout) for layout in ("ade20k", "cityscapes", "cocostuff")}


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr)).save(path)


# ------------------------------------------------------------------------------------ embedded layouts
def test_default_ade20k_output_is_unchanged(tmp_path):
    # golden values from the embedded writer before --layout existed (decoded label maps + embedded.json)
    cfg = EmbeddedADEConfig(n_train=3, n_val=2, height=32, width=48, n_classes=4, seed=7)
    root = build(tmp_path / "a", cfg)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [f"annotations/training/ADE_train_0000000{i}.png" for i in (1, 2, 3)] + \
        [f"annotations/validation/ADE_val_0000000{i}.png" for i in (1, 2)] + ["embedded.json"] + \
        [f"images/training/ADE_train_0000000{i}.jpg" for i in (1, 2, 3)] + \
        [f"images/validation/ADE_val_0000000{i}.jpg" for i in (1, 2)]
    h = hashlib.sha256()
    for f in files:
        if f.endswith(".png"):
            h.update(np.asarray(Image.open(root / f)).astype(np.uint8).tobytes())
    assert h.hexdigest() == "81123d21aaaf26690cfe7703d416ababbd1d8a6a50c48e9f36cd67e777def392"
    assert hashlib.sha256((root / "embedded.json").read_bytes()).hexdigest() == \
        "b9054bf98696b7279f7e6f31b9db09ff40691e3bbb1f30bb2edba1374591fad6"
    # the CLI without --layout and with --layout ade20k writes the very same bytes
    args = ["--n-train", "3", "--n-val", "2", "--height", "32", "--width", "48", "--n-classes", "4", "--seed", "7"]
    assert embedded_main(["--out", str(tmp_path / "b"), *args]) == 0
    assert embedded_main(["--out", str(tmp_path / "c"), "--layout", "ade20k", *args]) == 0
    for f in files:
        a = (root / f).read_bytes()
        assert a == (tmp_path / "b" / "ADEChallengeData2016" / f).read_bytes()
        assert a == (tmp_path / "c" / "ADEChallengeData2016" / f).read_bytes()
    with pytest.raises(ConfigError, match="layout"):
        build(tmp_path / "d", cfg, "pascal")


def test_layouts_hold_the_same_scenes_with_recoded_labels(roots):
    ade = ade20k_pairs(roots["ade20k"], "train")
    city = cityscapes_pairs(roots["cityscapes"], "train")
    coco = coco_pairs(roots["cocostuff"], "train")
    assert len(ade) == len(city) == len(coco) == 4
    # scene i of each layout: cityscapes sorts by city (synthA: scenes 1, 3; synthB: 2, 4)
    city_by_scene = {int(img.name.split("_")[2]): (img, lab) for img, lab in city}
    for i, (img_a, lab_a) in enumerate(ade, 1):
        tiny = read_label_map(lab_a, 7)
        c_img, c_lab = city_by_scene[i]
        assert np.array_equal(np.asarray(Image.open(c_lab)), np.vectorize(CITYSCAPES_IDS.get)(tiny))
        assert np.array_equal(np.asarray(Image.open(coco[i - 1][1])), np.vectorize(COCOSTUFF_VALUES.get)(tiny))
        # the same picture: COCO-Stuff JPEG == ADE20K JPEG; the lossless Cityscapes PNG encodes to that JPEG
        assert coco[i - 1][0].read_bytes() == img_a.read_bytes()
        buf = io.BytesIO()
        Image.open(c_img).save(buf, format="JPEG", quality=95)
        assert buf.getvalue() == img_a.read_bytes()
    # every non-zero Cityscapes id written has a trainId (35 -> 19 mapping of the DRN evaluation)
    assert set(CITYSCAPES_IDS.values()) - {0} <= set(CITYSCAPES_TRAIN_IDS)
    meta = json.loads((roots["cityscapes"] / "embedded.json").read_text())
    assert meta["layout"] == "cityscapes" and meta["label_values"]["sky"] == 23


# ------------------------------------------------------------------------------------ Cityscapes
def test_cityscapes_pairs_labels_and_errors(roots, tmp_path):
    root = roots["cityscapes"]
    pairs = cityscapes_pairs(root, "train")
    assert [p[0].parent.name for p in pairs] == ["synthA", "synthA", "synthB", "synthB"]
    assert pairs == sorted(pairs)
    assert pairs[0][1] == root / "gtFine" / "train" / "synthA" / "synthA_000000_000001_gtFine_labelIds.png"
    data = SemanticDataset(root, "val", SemanticDataConfig(dataset="cityscapes", size=(32, 64)))
    assert data.cfg.semantic_nc == 35 and data.names() == ["synthA_000000_000001", "synthB_000000_000002"]
    lab = data[0]["label"]
    assert set(lab.unique().tolist()) <= {0, 7, 11, 21, 22, 23, 26}   # ids kept as they are (0..34)
    assert int(lab[0, 0]) == 0 and int(lab[5, 5]) == 23                # dontcare frame, sky on top
    # bad input: missing folder, missing label, id outside 0..34
    with pytest.raises(MissingResourceError, match=r"leftImg8bit/train.*fetch_cityscapes_leftimg8bit"):
        cityscapes_pairs(tmp_path, "train")
    broken = tmp_path / "c"
    for d in ("leftImg8bit/val/x", "gtFine/val/x"):
        (broken / d).mkdir(parents=True)
    _png(broken / "leftImg8bit/val/x/x_0_1_leftImg8bit.png", np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"x_0_1_gtFine_labelIds\.png: label map missing"):
        cityscapes_pairs(broken, "val")
    _png(broken / "gtFine/val/x/x_0_1_gtFine_labelIds.png", np.full((4, 8), 35, np.uint8))
    with pytest.raises(DataError, match=r"x_0_1_gtFine_labelIds\.png: label value 35 outside 0\.\.34"):
        SemanticDataset(broken, "val", SemanticDataConfig(dataset="cityscapes", size=(4, 8)))[0]


# ------------------------------------------------------------------------------------ COCO-Stuff
def test_cocostuff_label_shift_and_layouts(roots, tmp_path):
    raw = tmp_path / "raw.png"
    _png(raw, np.array([[255, 0], [181, 5]], np.uint8))
    assert read_cocostuff_label(raw, 183).tolist() == [[0, 1], [182, 6]]   # 255 -> 0 dontcare, k -> k + 1
    _png(raw, np.array([[200, 0]], np.uint8))
    with pytest.raises(DataError, match=r"raw\.png: COCO-Stuff label value 200"):
        read_cocostuff_label(raw, 183)
    # cocostuff-164k layout (embedded): class indices = COCO-Stuff category ids
    data = SemanticDataset(roots["cocostuff"], "train", SemanticDataConfig(dataset="cocostuff", size=(32, 64)))
    assert data.cfg.semantic_nc == 183 and data.names()[0] == "000000000001"
    assert set(data[0]["label"].unique().tolist()) <= {0, 157, 124, 96, 169, 178, 3}
    assert int(data[0]["label"][0, 0]) == 0
    # the official OASIS / SPADE layout {split}_img / {split}_label
    off = tmp_path / "official"
    _png(off / "val_img" / "a.jpg", np.zeros((4, 4, 3), np.uint8))
    _png(off / "val_label" / "a.png", np.full((4, 4), 255, np.uint8))
    assert coco_pairs(off, "validation") == [(off / "val_img" / "a.jpg", off / "val_label" / "a.png")]
    assert SemanticDataset(off, "val", SemanticDataConfig(dataset="coco", size=(4, 4)))[0]["label"].sum() == 0
    # bad layouts
    with pytest.raises(MissingResourceError, match=r"val_img.*val_label.*images/val2017"):
        coco_pairs(tmp_path / "nothing", "val")
    with pytest.raises(MissingResourceError, match=r"annotations/train2017.*fetch_cocostuff_stuffthingmaps"):
        (tmp_path / "half" / "images" / "train2017").mkdir(parents=True)
        coco_pairs(tmp_path / "half", "train")


# ------------------------------------------------------------------------------------ ADE20K-outdoor
def test_ade_outdoor_file_list(roots, tmp_path):
    root = roots["ade20k"]
    listing = tmp_path / "outdoor.txt"
    listing.write_text("# outdoor stems\nADE_train_00000002\ntraining/ADE_train_00000004.jpg\n\nADE_val_00000001\n")
    cfg = SemanticDataConfig(dataset="ade_outdoor", size=(32, 64), subset_list=str(listing))
    assert cfg.semantic_nc == 151
    assert SemanticDataset(root, "train", cfg).names() == ["ADE_train_00000002", "ADE_train_00000004"]
    assert SemanticDataset(root, "val", cfg).names() == ["ADE_val_00000001"]
    with pytest.raises(ConfigError, match="subset_list.*one ADE20K image stem per line.*cannot be derived"):
        SemanticDataset(root, "train", SemanticDataConfig(dataset="ade_outdoor"))
    with pytest.raises(MissingResourceError, match=r"nope\.txt.*one ADE20K image stem per line"):
        SemanticDataset(root, "train",
                        SemanticDataConfig(dataset="ade_outdoor", subset_list=str(tmp_path / "nope.txt")))
    listing.write_text("ADE_train_00000002\nADE_train_00000099\n")
    with pytest.raises(DataError, match=r"outdoor\.txt.*neither ADE20K split.*ADE_train_00000099"):
        SemanticDataset(root, "train", cfg)
    listing.write_text("ADE_train_00000002\nADE_train_00000002\n")
    with pytest.raises(DataError, match="line 2.*already listed"):
        SemanticDataset(root, "train", cfg)
    listing.write_text("ADE_train_00000002\n")
    with pytest.raises(DataError, match="no listed stem is an image of the val split"):
        SemanticDataset(root, "val", cfg)


# ------------------------------------------------------------------------------------ LVIS
def _lvis_json(path):
    cats = [{"id": c, "name": f"c{c}"} for c in range(300, 0, -1)]  # unsorted on purpose
    url = "http://images.cocodataset.org/{}2017/{:012d}.jpg"
    images = [{"id": 1, "height": 6, "width": 8, "coco_url": url.format("val", 1)},
              {"id": 2, "height": 4, "width": 4, "coco_url": url.format("train", 2)},
              {"id": 3, "height": 4, "width": 4, "coco_url": url.format("train", 3)}]
    anns = [  # image 1: a 300 block, then a category-7 square overlapping it (drawn later -> wins)
        {"id": 1, "image_id": 1, "category_id": 300, "segmentation": [[0, 0, 4, 0, 4, 3, 0, 3]]},
        {"id": 2, "image_id": 1, "category_id": 7,
         "segmentation": [[3, 2, 6, 2, 6, 4, 3, 4], [7, 5, 7.9, 5, 7.9, 5.9, 7, 5.9]]},
        {"id": 3, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 2, 1, 2, 2, 1, 2]]},
    ]  # image 3 has no annotation -> no label map
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_lvis_rasterisation_overlap_and_index(tmp_path):
    js = _lvis_json(tmp_path / "lvis_v1_val.json")
    root = tmp_path / "coco"
    assert lvis_main(["--json", str(js), "--split", "val", "--root", str(root)]) == 0
    lab = np.asarray(Image.open(root / "lvis_labels" / "val" / "000000000001.png")).astype(np.int64)
    expect = np.zeros((6, 8), np.int64)
    expect[0:4, 0:5] = 300          # category id 300 -> index 300 (ids 1..300 sorted), 16-bit PNG
    expect[2:5, 3:7] = 7            # later instance overwrites the overlap
    expect[5, 7] = 7                # second polygon of the same instance
    assert lab.tolist() == expect.tolist()
    assert not (root / "lvis_labels" / "val" / "000000000003.png").exists()
    meta = json.loads((root / "lvis_labels" / "val.json").read_text())
    assert meta["written"] == 2 and meta["skipped_without_annotation"] == 1 and meta["semantic_nc"] == 301
    assert lvis.category_index([{"id": 10}, {"id": 3}, {"id": 7}]) == {3: 1, 7: 2, 10: 3}
    # pairs: LVIS val images come from both COCO folders
    with pytest.raises(MissingResourceError, match="images/train2017"):
        lvis_pairs(root, "val")
    _png(root / "images" / "val2017" / "000000000001.jpg", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"000000000002\.png: no COCO image"):
        lvis_pairs(root, "val")
    _png(root / "images" / "train2017" / "000000000002.jpg", np.zeros((4, 4, 3), np.uint8))
    data = SemanticDataset(root, "val", SemanticDataConfig(dataset="lvis", semantic_nc=301, size=(6, 8)))
    assert data.names() == ["000000000001", "000000000002"]
    assert data[0]["label"].tolist() == expect.tolist()
    assert SemanticDataConfig(dataset="lvis").semantic_nc == 1204 == LAYOUTS["lvis"].semantic_nc
    with pytest.raises(DataError, match="label value 300 outside 0..9"):
        SemanticDataset(root, "val", SemanticDataConfig(dataset="lvis", semantic_nc=10, size=(6, 8)))[0]
    with pytest.raises(MissingResourceError, match="lvis_labels/train.*lvis_cli"):
        lvis_pairs(root, "train")


def test_lvis_bad_annotations(tmp_path):
    js = tmp_path / "bad.json"
    js.write_text(json.dumps({"images": [{"id": 1, "height": 2, "width": 2, "coco_url": "x/1.jpg"}],
                              "annotations": [{"id": 5, "image_id": 1, "category_id": 1,
                                               "segmentation": {"counts": "abc", "size": [2, 2]}}],
                              "categories": [{"id": 1}]}))
    with pytest.raises(DataError, match=r"bad\.json: annotation 5: .*RLE is not supported"):
        lvis.export(js, tmp_path / "r", "train")
    js.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="no list 'annotations'"):
        lvis.export(js, tmp_path / "r", "train")
    assert lvis_main(["--json", str(tmp_path / "missing.json"), "--split", "train", "--root", str(tmp_path)]) == 2


# ------------------------------------------------------------------------------------ table / CLI
def test_layout_table_and_cli_outputs(tmp_path):
    assert {k: v.semantic_nc for k, v in LAYOUTS.items()} == {"ade20k": 151, "ade_outdoor": 151, "cityscapes": 35,
                                                              "coco": 183, "lvis": 1204}
    with pytest.raises(ConfigError, match="unknown semantic dataset 'pascal'"):
        SemanticDataConfig(dataset="pascal")
    for layout, ds in (("cityscapes", "cityscapes"), ("cocostuff", "coco")):
        assert embedded_main(["--out", str(tmp_path), "--layout", layout, "--n-train", "2", "--n-val", "1",
                              "--height", "16", "--width", "32", "--n-classes", "3"]) == 0
        data = SemanticDataset(tmp_path / layout, "train", SemanticDataConfig(dataset=ds, size=(16, 32)))
        assert len(data) == 2 and data[(1, True)]["image"].shape == (3, 16, 32)
        assert len(SemanticDataset(tmp_path / layout, "val", SemanticDataConfig(dataset=ds, size=(16, 32)))) == 1
