"""Semantic datasets (ADE20K layout), the embedded tiny ADE20K-layout dataset and the resumable sampler."""
import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.data.embedded_ade import EmbeddedADEConfig, build
from gan_core.data.embedded_ade_cli import main as embedded_main
from gan_core.data.semantic import (ResumableStreamSampler, SemanticDataConfig, SemanticDataset, ade20k_pairs,
                                    epochs_to_iterations, one_hot, read_label_map)
from gan_core.errors import ConfigError, DataError, MissingResourceError


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory):
    return build(tmp_path_factory.mktemp("ade"), EmbeddedADEConfig(n_train=6, n_val=3, height=48, width=64,
                                                                    n_classes=6, seed=1))


def test_embedded_layout_and_classes(ade_root):
    train = ade20k_pairs(ade_root, "train")
    val = ade20k_pairs(ade_root, "validation")
    assert len(train) == 6 and len(val) == 3
    assert all(i.suffix == ".jpg" and l.suffix == ".png" and i.stem == l.stem for i, l in train)
    assert train[0][0].parent == ade_root / "images" / "training"
    labels = np.stack([read_label_map(l, 7) for _, l in train])
    assert labels.shape == (6, 48, 64)
    present = set(np.unique(labels).tolist())
    assert {0, 1, 2} <= present and present <= set(range(7))  # 0 = dontcare frame, classes 1..6
    # class-dependent appearance: mean colours of sky (1) and ground (2) differ clearly
    img = np.asarray(Image.open(train[0][0])).astype(float)
    lab = read_label_map(train[0][1], 7)
    assert np.abs(img[lab == 1].mean(0) - img[lab == 2].mean(0)).sum() > 60


def test_embedded_is_deterministic(tmp_path):
    cfg = EmbeddedADEConfig(n_train=2, n_val=2, height=32, width=32, n_classes=4, seed=3)
    a, b = build(tmp_path / "a", cfg), build(tmp_path / "b", cfg)
    for (ia, la), (ib, lb) in zip(ade20k_pairs(a, "train"), ade20k_pairs(b, "train")):
        assert ia.read_bytes() == ib.read_bytes() and la.read_bytes() == lb.read_bytes()
    with pytest.raises(ConfigError, match="n_classes"):
        EmbeddedADEConfig(n_classes=9)
    assert embedded_main(["--out", str(tmp_path / "c"), "--n-train", "1", "--n-val", "1", "--height", "16",
                          "--width", "16"]) == 0


def test_dataset_resizes_and_flips(ade_root):
    data = SemanticDataset(ade_root, "train", SemanticDataConfig(semantic_nc=7, size=(32, 32)))
    item = data[0]
    assert item["image"].shape == (3, 32, 32) and item["label"].shape == (32, 32)
    assert item["label"].dtype == torch.int64 and -1 <= item["image"].min() and item["image"].max() <= 1
    # nearest resize keeps label values valid (no interpolated in-between classes)
    raw = set(np.unique(read_label_map(data.pairs[0][1], 7)).tolist())
    assert set(item["label"].unique().tolist()) <= raw
    flipped = data[(0, True)]
    assert torch.equal(flipped["label"], item["label"].flip(-1))
    assert torch.allclose(flipped["image"], item["image"].flip(-1))
    oh = one_hot(item["label"][None], 7)
    assert oh.shape == (1, 7, 32, 32) and torch.equal(oh.argmax(1)[0], item["label"])


def test_label_beyond_classes_is_a_data_error(ade_root, tmp_path):
    bad = tmp_path / "bad.png"
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(bad)
    with pytest.raises(DataError, match=r"bad\.png.*label value 9 outside 0\.\.6"):
        read_label_map(bad, 7)
    # through the dataset: the 6-class embedded data with a 4-class configuration (semantic_nc 5)
    data = SemanticDataset(ade_root, "train", SemanticDataConfig(semantic_nc=5, size=(48, 64)))
    with pytest.raises(DataError, match="ADE_train_00000001.png"):
        for i in range(len(data)):
            data[i]
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(DataError, match="grayscale or palette"):
        read_label_map(rgb, 7)


def test_missing_folders_name_their_fetch_targets(tmp_path):
    with pytest.raises(MissingResourceError, match="fetch_ade20k"):
        ade20k_pairs(tmp_path, "train")
    (tmp_path / "images" / "training").mkdir(parents=True)
    (tmp_path / "annotations" / "training").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "training" / "x.jpg")
    with pytest.raises(DataError, match="label map missing"):
        ade20k_pairs(tmp_path, "train")
    for name in ("cityscapes", "coco"):
        with pytest.raises(MissingResourceError, match="fetch_"):
            SemanticDataset(tmp_path, "train", SemanticDataConfig(dataset=name))


def test_sampler_epochs_shards_and_resume():
    s = ResumableStreamSampler(10, batch_size=3, seed=5)
    assert s.batches_per_epoch == 3 and len(s) == 9
    e0 = list(s)
    assert len({i for i, _ in e0}) == 9                       # no repeats inside an epoch
    s.set_epoch(1)
    assert list(s) != e0                                      # reshuffled per epoch
    s.set_epoch(0, start_batch=2)
    assert list(s) == e0[6:]                                  # resume inside an epoch
    assert ResumableStreamSampler(10, 3, seed=5).epoch_keys(0) == e0  # independent of any global RNG
    r0 = ResumableStreamSampler(10, 2, seed=5, rank=0, world_size=2).epoch_keys(0)
    r1 = ResumableStreamSampler(10, 2, seed=5, rank=1, world_size=2).epoch_keys(0)
    assert not {i for i, _ in r0} & {i for i, _ in r1} and len(r0) == len(r1) == 4  # disjoint shards
    with pytest.raises(ConfigError, match="exceeds"):
        ResumableStreamSampler(3, batch_size=4)
    assert epochs_to_iterations(200, 20210, 32) == 126200      # thesis schedule in iterations
