"""RePRI downstream system: weight layout, feature shapes, classifier, episodes, CLI smoke (CPU, tiny data)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from downstream.repri.classifier import repri_adapt, task_weights
from downstream.repri.config import RePRIConfig
from downstream.repri.episodes import (SyntheticPools, fold_classes, index_dataset, read_list, read_support_pool,
                                       sample_episodes)
from downstream.repri.evaluate import intersection_union, preprocess, resized_hw
from downstream.repri.pspnet import PSPNet, PSPNetArch, feature_size, load_pspnet
from downstream import repri_cli


# the test machine's cores are shared: a two-thread intra-op pool mostly waits (about 5x slower here)
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- (a) official key layout, written by hand
def _bn(prefix, n):
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def official_layout():
    """Keys and shapes from the architecture description (reference notes §3.1), independent of pspnet.py."""
    k = {"layer0.0.weight": (64, 3, 3, 3), **_bn("layer0.1", 64),
         "layer0.3.weight": (64, 64, 3, 3), **_bn("layer0.4", 64),
         "layer0.6.weight": (128, 64, 3, 3), **_bn("layer0.7", 128)}
    inplanes = 128
    for stage, (n, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), 1):
        for b in range(n):
            p = f"layer{stage}.{b}"
            k[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1); k.update(_bn(f"{p}.bn1", planes))
            k[f"{p}.conv2.weight"] = (planes, planes, 3, 3); k.update(_bn(f"{p}.bn2", planes))
            k[f"{p}.conv3.weight"] = (4 * planes, planes, 1, 1); k.update(_bn(f"{p}.bn3", 4 * planes))
            if b == 0:
                k[f"{p}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                k.update(_bn(f"{p}.downsample.1", 4 * planes))
            inplanes = 4 * planes
    for i in range(4):
        k[f"ppm.features.{i}.1.weight"] = (512, 2048, 1, 1); k.update(_bn(f"ppm.features.{i}.2", 512))
    k["bottleneck.0.weight"] = (512, 4096, 3, 3); k.update(_bn("bottleneck.1", 512))
    k["classifier.weight"] = (61, 512, 1, 1); k["classifier.bias"] = (61,)
    return k


def test_official_checkpoint_layout_loads_strictly(tmp_path):
    layout = official_layout()
    assert len([k for k in layout if not k.endswith("num_batches_tracked")]) == 302   # reference notes §3.1
    state = {"module." + k: (torch.zeros(s, dtype=torch.long) if k.endswith("tracked") else torch.zeros(s))
             for k, s in layout.items()}
    state["module.classifier.bias"] = torch.arange(61.0)
    state["module.layer4.2.bn3.running_var"] = torch.full((2048,), 3.0)
    torch.save({"epoch": 20, "state_dict": state, "optimizer": {}}, tmp_path / "best.pth")
    net = load_pspnet(tmp_path / "best.pth")
    assert torch.equal(net.classifier.bias, torch.arange(61.0))
    assert torch.equal(net.layer4[2].bn3.running_var, torch.full((2048,), 3.0))
    assert not net.training
    # a missing key is an error naming the file
    del state["module.bottleneck.1.bias"]
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    from gan_core.errors import DataError
    with pytest.raises(DataError, match="bad.pth"):
        load_pspnet(tmp_path / "bad.pth")


# ---------------------------------------------------------------- (b) feature shapes
def test_feature_shapes():
    assert feature_size(417) == 53            # (417 -> 209 -> 105 -> 53), reference notes §3.1
    torch.manual_seed(0)
    tiny = PSPNet(PSPNetArch.tiny()).eval()
    with torch.no_grad():
        assert tiny.extract_features(torch.randn(1, 3, 417, 417)).shape == (1, 32, 53, 53)
        full = PSPNet().eval()                 # one full-width forward (about 5 s on one CPU core)
        assert full.extract_features(torch.randn(1, 3, 417, 417)).shape == (1, 512, 53, 53)
    assert feature_size(65) == 9


def test_resize_rule():
    assert resized_hw(480, 640, 417) == (312, 416)   # long side 417 floored to a multiple of 8
    cfg = RePRIConfig(image_size=33)
    img = np.full((20, 40, 3), 255, np.uint8)
    lab = np.ones((20, 40), np.int64)
    x, y = preprocess(img, lab, cfg)
    nh, nw = resized_hw(20, 40, 33)
    assert (nh, nw) == (16, 32)
    assert (y[:nh, :nw] == 1).all() and (y[nh:] == 255).all() and (y[:, nw:] == 255).all()
    pad = (0 - torch.tensor(cfg.mean) * 255) / (torch.tensor(cfg.std) * 255)
    assert torch.allclose(x[:, -1, -1], pad)


# ---------------------------------------------------------------- (c) classifier
def _toy_tasks(t=2, c=8, h=12, shots=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.nn.functional.normalize(torch.randn(t, c, generator=g), dim=1)

    def feats(mask):
        sign = mask.float() * 2 - 1                                   # +v on foreground, -v on background
        f = sign[:, :, None] * v[:, None, :, None, None] + 0.05 * torch.randn(*mask.shape[:2], c, h, h, generator=g)
        return f

    ms = torch.zeros(t, shots, h, h, dtype=torch.long)
    ms[:, :, 2:7, 3:9] = 1
    mq = torch.zeros(t, 1, h, h, dtype=torch.long)
    mq[0, 0, 5:11, 1:6] = 1
    mq[-1, 0, 0:4, 6:12] = 1
    return feats(ms), ms, feats(mq), mq


def test_classifier_separable_toy_recovers_query_mask(monkeypatch):
    fs, ms, fq, mq = _toy_tasks()
    steps = []
    orig = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: (steps.append(1), orig(self, *a, **k))[1])
    cfg = RePRIConfig()
    state = repri_adapt(fs, ms, fq, torch.ones_like(mq, dtype=torch.bool), torch.tensor([1, 1]), cfg)
    assert len(steps) == 49                      # range(1, adapt_iter=50)
    assert torch.equal(state.predict(fq), mq[:, 0])


def test_classifier_initialisation_and_weights():
    fs, ms, fq, mq = _toy_tasks(shots=2)
    state = repri_adapt(fs, ms, fq, torch.ones_like(mq, dtype=torch.bool), torch.tensor([2, 2]),
                        RePRIConfig(adapt_iter=1))           # no SGD step: the initial values
    fg = ms[:, :, None].float()
    proto = (fs * fg).sum((1, 3, 4)) / fg.sum((1, 3, 4))
    assert torch.allclose(state.prototype, proto, atol=1e-6)
    cos = torch.nn.functional.cosine_similarity(fq[:, 0], proto[:, :, None, None], dim=1)
    assert torch.allclose(state.bias, 20 * cos.mean((1, 2)), atol=1e-5)
    assert torch.allclose(task_weights(None, torch.tensor([1, 11])), torch.tensor([1.0, 1 / 11]))   # 'auto'
    assert torch.allclose(task_weights(0.5, torch.tensor([1, 11])), torch.tensor([0.5, 0.5]))


def _reference_repri(fs, ms, fq, steps=49, lr=0.025, t=20.0, update_at=10):
    """One task, written plainly from the formulas (pixels as rows): second source for repri_adapt."""
    s_feat = fs.permute(0, 2, 3, 1).reshape(-1, fs.shape[1])           # (S*h*w, C)
    s_lab = ms.reshape(-1)
    q_feat = fq[0].permute(1, 2, 0).reshape(-1, fq.shape[1])
    valid = s_lab != 255
    proto = s_feat[s_lab == 1].mean(0).clone()
    cos = lambda f, p: (f @ p) / (f.norm(dim=1) * p.norm() + 1e-10)
    bias = (t * cos(q_feat, proto)).mean().clone()
    n_shots = ms.shape[0] - int((ms == 255).flatten(1).all(1).sum())
    w_kl = w_ent = 1.0 / n_shots
    pq = torch.sigmoid(t * cos(q_feat, proto) - bias)
    pi = torch.stack([1 - pq.mean(), pq.mean()]).detach()
    proto.requires_grad_(True); bias.requires_grad_(True)
    for it in range(1, steps + 1):
        pq = torch.sigmoid(t * cos(q_feat, proto) - bias)
        ps = torch.sigmoid(t * cos(s_feat, proto) - bias)[valid]
        y = s_lab[valid].float()
        ce = -(y * torch.log(ps + 1e-10) + (1 - y) * torch.log(1 - ps + 1e-10)).mean()
        ent = -(pq * torch.log(pq + 1e-10) + (1 - pq) * torch.log(1 - pq + 1e-10)).mean()
        marg = torch.stack([1 - pq.mean(), pq.mean()])
        kl = (marg * torch.log(marg / (pi + 1e-10))).sum()
        loss = ce + w_kl * kl + w_ent * ent
        gp, gb = torch.autograd.grad(loss, [proto, bias])
        with torch.no_grad():
            proto -= lr * gp
            bias -= lr * gb
        if it + 1 == update_at:
            with torch.no_grad():
                pq = torch.sigmoid(t * cos(q_feat, proto) - bias)
                pi = torch.stack([1 - pq.mean(), pq.mean()])
            w_kl += 1
    return proto.detach(), bias.detach()


def test_classifier_matches_plain_reference_and_batching():
    """Two tasks with 1 and 3 shots in one padded batch == each task by the plain per-task reference."""
    g = torch.Generator().manual_seed(3)
    noisy = lambda x: x + 2.0 * torch.randn(x.shape, generator=g)  # noisy enough that the KL term matters
    fs1, ms1, fq1, _ = _toy_tasks(t=1, shots=1, seed=1)
    fs3, ms3, fq3, _ = _toy_tasks(t=1, shots=3, seed=2)
    fs1, fq1, fs3, fq3 = noisy(fs1), noisy(fq1), noisy(fs3), noisy(fq3)
    ms3[0, 1, 0, :] = 255                                        # some ignored support pixels
    fs = torch.zeros(2, 3, *fs3.shape[2:]); fs[0, :1] = fs1[0]; fs[1] = fs3[0]
    ms = torch.full((2, 3, *ms3.shape[2:]), 255, dtype=torch.long); ms[0, :1] = ms1[0]; ms[1] = ms3[0]
    fq = torch.cat([fq1, fq3])
    valid = torch.ones(2, 1, *fq.shape[-2:], dtype=torch.bool)
    state = repri_adapt(fs, ms, fq, valid, torch.tensor([1, 3]))
    no_update = repri_adapt(fs, ms, fq, valid, torch.tensor([1, 3]), RePRIConfig(fb_param_update=()))
    for i, (f, m, q) in enumerate(((fs1[0], ms1[0], fq1), (fs3[0], ms3[0], fq3))):
        proto, bias = _reference_repri(f, m, q[0])
        assert torch.allclose(state.prototype[i], proto, atol=1e-5), i
        assert torch.allclose(state.bias[i], bias, atol=1e-5), i
        # the comparison is sensitive to the pi re-estimation / KL weight +1 at iteration 10
        assert (no_update.prototype[i] - proto).abs().max() + (no_update.bias[i] - bias).abs() > 1e-4, i


def test_intersection_union_against_confusion_matrix():
    from gan_core.metrics.segmentation import confusion_matrix
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 2, (3, 9, 9), generator=g)
    gt = torch.randint(0, 2, (3, 9, 9), generator=g)
    gt[:, :2] = 255
    inter, union = intersection_union(pred, gt)
    for i in range(3):
        cm = confusion_matrix(pred[i], gt[i], 2, ignore_index=255)
        assert inter[i] == cm[1, 1] and union[i] == cm[1, 1] + cm[0, 1] + cm[1, 0]


# ---------------------------------------------------------------- (d) episodes
def _write(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)


def make_coco(root, n_class1=6):
    """64x64 images; class 1 on a half (2048 px) in images 0..n-1; image 'a' has 2047 px of class 1 and
    class 5 on the other half; image 'b' class 5 + class 2 (not a fold-0 test class); 'c' only class 2."""
    rng = np.random.default_rng(0)
    lines, labels = [], {}
    for i in range(n_class1):
        lab = np.zeros((64, 64), np.uint8)
        lab[:, (i % 2) * 32:(i % 2) * 32 + 32] = 1
        labels[f"img{i}"] = lab
    a = np.zeros((64, 64), np.uint8); a[:, 32:] = 5; a[:, :32] = 1; a[0, 0] = 0   # 2047 px of class 1
    labels["imga"] = a
    b = np.zeros((64, 64), np.uint8); b[:32] = 5; b[40:, :10] = 2
    labels["imgb"] = b
    c = np.zeros((64, 64), np.uint8); c[10:50, 10:50] = 2
    labels["imgc"] = c
    for name, lab in labels.items():
        _write(root / "val2014" / f"{name}.jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        _write(root / "val" / f"{name}.png", lab, "L")
        lines.append(f"val2014/{name}.jpg val/{name}.png")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root / "val.txt"


def make_synthetic(root, class_id, stem, n, empty=0):
    rng = np.random.default_rng(n)
    kept = []
    for j in range(n):
        m = np.zeros((64, 64), np.uint8)
        if j >= empty:
            m[10:40, 5:30] = 1
        _write(root / str(class_id) / stem / f"{j}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        _write(root / str(class_id) / stem / f"{j}_mask.png", m, "L")
        kept.append({"image": f"{j}.png", "mask": f"{j}_mask.png"})
    (root / str(class_id) / stem / "manifest.json").write_text(json.dumps({"kept": kept}))


def test_fold_classes():
    assert fold_classes(0) == list(range(1, 81, 4)) and fold_classes(0)[:3] == [1, 5, 9] and len(fold_classes(0)) == 20
    folds = [set(fold_classes(i)) for i in range(4)]
    assert set().union(*folds) == set(range(1, 81)) and sum(map(len, folds)) == 80
    assert fold_classes(3)[0] == 4


def test_eligibility_and_sampling(tmp_path, caplog):
    index = index_dataset(read_list(make_coco(tmp_path), tmp_path), fold_classes(0), 2048)
    stems = [it.stem for it in index.items]
    assert [stems[i] for i in index.per_class[1]] == [f"img{i}" for i in range(6)]   # imga has 2047 px: not eligible
    assert [stems[i] for i in index.per_class[5]] == ["imga", "imgb"]
    assert index.present[stems.index("imga")] == [1, 5]
    assert "imgc" not in [stems[i] for i in index.queries]

    s1 = sample_episodes(index, 20, np.random.default_rng(2020))
    s2 = sample_episodes(index, 20, np.random.default_rng(2020))
    assert s1.episodes == s2.episodes and s1.next_start == 20
    assert all(e.query not in e.supports for e in s1.episodes)
    assert all(s in index.per_class[e.class_id] for e in s1.episodes for s in e.supports)

    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps({"1": ["img0", "img1", "imga"], "5": ["imgb"]}))
    with caplog.at_level(logging.WARNING):
        pool = read_support_pool(pool_file, index)
    assert "imga" in caplog.text and [stems[i] for i in pool[1]] == ["img0", "img1"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = sample_episodes(index, 30, np.random.default_rng(1), support_pool=pool)
    assert all(set(e.supports) <= set(pool[e.class_id]) for e in s.episodes)
    assert s.skipped > 0 and "skipped" in caplog.text      # query imgb, class 5: its only pool image is itself

    syn = tmp_path / "syn"
    make_synthetic(syn, 1, "img0", 12, empty=1)              # 11 with foreground -> 10 appended
    make_synthetic(syn, 1, "img1", 3)                        # 3 appended
    make_synthetic(syn, 5, "imgb", 2)
    pools = SyntheticPools(syn)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = sample_episodes(index, 30, np.random.default_rng(1), support_pool=pool, synthetic=pools.get)
    assert "no foreground" in caplog.text
    plain = sample_episodes(index, 30, np.random.default_rng(1), support_pool=pool)
    expected = {"img0": 10, "img1": 3, "imgb": 2}
    for e in s.episodes:
        assert e.n_shots == 1 + min(10, len(pools.get(e.class_id, stems[e.supports[0]])))
        assert len(e.synthetic) == expected[stems[e.supports[0]]]
        assert len(set(e.synthetic)) == len(e.synthetic)
    assert [(e.query, e.class_id) for e in plain.episodes] == [(e.query, e.class_id) for e in s.episodes]


# ---------------------------------------------------------------- (e) CLI smoke
def test_cli_smoke(tmp_path, capsys):
    lst = make_coco(tmp_path / "coco")
    ckpt = tmp_path / "tiny.pth"
    assert repri_cli.main(["init-tiny", "--out", str(ckpt)]) == 0
    syn = tmp_path / "syn"
    for stem in ("img0", "img1"):
        make_synthetic(syn, 1, stem, 4)
    make_synthetic(syn, 5, "imgb", 2)
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"1": ["img0", "img1"], "5": ["imgb"]}))
    common = ["evaluate", "--coco-root", str(tmp_path / "coco"), "--list", str(lst), "--fold", "0",
              "--checkpoint", str(ckpt), "--runs", "2", "--episodes", "5", "--device", "cpu",
              "--params", json.dumps({"image_size": 65, "adapt_iter": 5})]
    out = tmp_path / "res.json"
    assert repri_cli.main(common + ["--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert 0.0 <= res["value"] <= 100.0 and len(res["runs"]) == 2 and res["runs"][1]["seed"] == 2021
    assert set(res["per_class"]) <= {"1", "5"} and "provenance" in res
    assert res["value"] == pytest.approx(np.mean([r["miou"] for r in res["runs"]]))
    out2 = tmp_path / "res_syn.json"
    assert repri_cli.main(common + ["--out", str(out2), "--support-pool", str(pool), "--synthetic", str(syn)]) == 0
    res2 = json.loads(out2.read_text())
    assert res2["mean_shots"] > 1.0 and res2["synthetic"] == str(syn)

    assert repri_cli.main(common + ["--out", str(tmp_path / "x.json"), "--checkpoint",
                                    str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err
    assert "repri_coco_checkpoints" in err and "icloud" in err.lower()
    assert not (tmp_path / "x.json").exists()
