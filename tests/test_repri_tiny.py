"""RePRI additions for Tables 6.6-6.8: the tiny base-class PSPNet (official checkpoint layout, resumable) and the
support sets that RePRI actually adapts on (real + synthetic / standard-augmented). CPU, seconds.
(Episode sampling, the classifier and the CLI smoke are covered by tests/test_repri.py.)"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from downstream import repri_cli
from downstream.repri import evaluate as ev
from downstream.repri.config import RePRIConfig
from downstream.repri.episodes import Episode, IGNORE, SyntheticPools, fold_classes, index_dataset, read_list
from downstream.repri.pspnet import PSPNetArch, arch_from_state_dict, load_pspnet, strip_prefix
from downstream.repri.train_tiny import base_class_lut
from test_repri import make_coco, make_synthetic


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train_list(root):
    """A 'train' split: 64x64 images, base classes 2, 3 and test class 1 (fold 0)."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(4):
        lab = np.zeros((64, 64), np.uint8)
        lab[:32, :32], lab[32:, 32:], lab[:8, 40:] = 2, 3, 1
        (root / "train2014").mkdir(parents=True, exist_ok=True)
        (root / "train").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "train2014" / f"t{i}.jpg")
        Image.fromarray(lab, "L").save(root / "train" / f"t{i}.png")
        lines.append(f"train2014/t{i}.jpg train/t{i}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root / "train.txt"


def _train(root, lst, out, iterations):
    params = json.dumps({"iterations": iterations, "image_size": 33, "batch_size": 2, "checkpoint_every": 1,
                         "log_every": 1})
    assert repri_cli.main(["train-tiny", "--coco-root", str(root), "--list", str(lst), "--fold", "0",
                           "--out", str(out), "--params", params, "--device", "cpu"]) == 0
    return out / "best.pth"


def test_base_class_lut():
    lut = base_class_lut(0)
    assert lut[0] == 0 and lut[IGNORE] == IGNORE
    assert all(lut[c] == 0 for c in fold_classes(0))                        # test classes -> background
    base = [c for c in range(1, 81) if c not in fold_classes(0)]
    assert [int(lut[c]) for c in base] == list(range(1, 61))                 # 60 base classes -> 1..60


def test_train_tiny_writes_official_layout_and_resumes_exactly(tmp_path):
    lst = _train_list(tmp_path)
    ckpt = _train(tmp_path, lst, tmp_path / "run", 3)
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert set(raw) == {"epoch", "state_dict"} and raw["epoch"] == 3
    assert raw["state_dict"] and all(k.startswith("module.") for k in raw["state_dict"])
    assert arch_from_state_dict(strip_prefix(raw["state_dict"])) == PSPNetArch.tiny()
    net = load_pspnet(ckpt)                                                   # strict load
    assert not net.training
    init = repri_cli.main(["init-tiny", "--out", str(tmp_path / "init.pth")]) == 0
    init_sd = torch.load(tmp_path / "init.pth", weights_only=True)["state_dict"]
    assert init and set(init_sd) == set(raw["state_dict"])                    # same keys as init-tiny
    assert any(not torch.equal(init_sd[k], raw["state_dict"][k]) for k in init_sd if "conv" in k)  # trained
    rows = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["ce"]) for r in rows)

    # resume: 2 iterations, then continue to 4 == 4 iterations in one go
    _train(tmp_path, lst, tmp_path / "split", 2)
    resumed = torch.load(_train(tmp_path, lst, tmp_path / "split", 4), weights_only=True)["state_dict"]
    straight = torch.load(_train(tmp_path, lst, tmp_path / "straight", 4), weights_only=True)["state_dict"]
    for k in straight:
        assert torch.allclose(resumed[k].float(), straight[k].float(), atol=1e-6), k


# ---------------------------------------------------------------- support sets seen by the classifier
def _capture(monkeypatch):
    seen = {}
    orig = ev.repri_adapt

    def spy(fs, gs, fq, valid, n_shots, cfg):
        seen["fs"], seen["gs"], seen["n_shots"] = fs.clone(), gs.clone(), n_shots.clone()
        return orig(fs, gs, fq, valid, n_shots, cfg)

    monkeypatch.setattr(ev, "repri_adapt", spy)
    return seen


def _setup(tmp_path):
    lst = make_coco(tmp_path / "coco")
    index = index_dataset(read_list(lst, tmp_path / "coco"), fold_classes(0))
    stems = [it.stem for it in index.items]
    syn = tmp_path / "syn"
    make_synthetic(syn, 1, "img0", 4)
    make_synthetic(syn, 1, "img1", 14)
    pools = SyntheticPools(syn)
    torch.manual_seed(0)
    from downstream.repri.pspnet import PSPNet
    model = PSPNet(PSPNetArch.tiny()).eval()
    return index, stems, pools, model


@pytest.mark.parametrize("n_syn", [0, 4, 10])
def test_synthetic_supports_grow_the_support_set(tmp_path, monkeypatch, n_syn):
    index, stems, pools, model = _setup(tmp_path)
    cfg = RePRIConfig(image_size=33, adapt_iter=2)
    syn = tuple(pools.get(1, "img1")[:n_syn])
    ep = Episode(query=stems.index("img2"), class_id=1, supports=(stems.index("img1"),), synthetic=syn)
    seen = _capture(monkeypatch)
    res, skipped = ev.run_tasks(model, index, [ep], cfg, torch.device("cpu"))
    assert skipped == 0 and len(res) == 1
    assert seen["fs"].shape[1] == 1 + n_syn and seen["n_shots"].tolist() == [1 + n_syn]
    assert ev.task_shots(ep, cfg) == 1 + n_syn
    # every injected shot carries foreground (synthetic masks "nonzero" -> class)
    assert ((seen["gs"] == 1).flatten(2).any(2)).all()


def test_standard_augmentation_adds_augmented_supports(tmp_path, monkeypatch):
    index, stems, pools, model = _setup(tmp_path)
    q, s = stems.index("img2"), stems.index("img0")
    seen = _capture(monkeypatch)
    plain = RePRIConfig(image_size=33, adapt_iter=2)
    ev.run_tasks(model, index, [Episode(q, 1, (s,))], plain, torch.device("cpu"))
    assert seen["fs"].shape[1] == 1
    real_feat = seen["fs"][0, 0]

    std = RePRIConfig(image_size=33, adapt_iter=2, standard_aug=True, max_synthetic=6)
    ep = Episode(q, 1, (s,))
    ev.run_tasks(model, index, [ep], std, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert seen["fs"].shape[1] == 7 and seen["n_shots"].tolist() == [7] and ev.task_shots(ep, std) == 7
    assert torch.allclose(seen["fs"][0, 0], real_feat, atol=1e-5)            # the real support is untouched
    assert all(not torch.allclose(seen["fs"][0, i], real_feat) for i in range(1, 7))   # copies are warped
    first = seen["gs"].clone()
    ev.run_tasks(model, index, [ep], std, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert torch.equal(seen["gs"], first)                                     # seeded

    # standard + synthetic: the drawn synthetic pairs are augmented, no extra copies of the real support
    syn = tuple(pools.get(1, "img0"))
    ep_both = Episode(q, 1, (s,), syn)
    ev.run_tasks(model, index, [ep_both], std, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert seen["fs"].shape[1] == 1 + len(syn) == 5 and ev.task_shots(ep_both, std) == 5
    augmented = seen["gs"].clone()
    no_aug = RePRIConfig(image_size=33, adapt_iter=2, max_synthetic=6)
    ev.run_tasks(model, index, [ep_both], no_aug, torch.device("cpu"))
    assert seen["fs"].shape[1] == 5
    assert torch.equal(seen["gs"][0, 0], augmented[0, 0])                    # real support: same labels
    assert all(not torch.equal(seen["gs"][0, i], augmented[0, i]) for i in range(1, 5))   # synthetic: warped
