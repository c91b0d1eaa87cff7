"""OSVOS downstream system: official weight layout, loss, augmentation, batch doubling, resume, CLI smoke."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from downstream.osvos import data
from downstream.osvos.augment import apply_affine, affine_theta, standard_augment
from downstream.osvos.config import OSVOSConfig
from downstream.osvos.finetune import FinetuneTrainer, build_optimizer, merge_objects, predict_sequence
from downstream.osvos.loss import class_balanced_bce
from downstream.osvos.net import OSVOSNet, bilinear_kernel, load_parent
from gan_core.errors import ConfigError
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.dataclass_config import from_dict
from gan_core.utils.images import write_image, write_mask

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------- official layout
def official_state_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official parent, written from the architecture description in the reference
    notes (§1.1): VGG16 conv layers at Sequential indices (conv, ReLU, [pool first in stages 2-5]), side
    branches for stages 2-5, deconvolution kernels 4, 8, 16, 32."""
    vgg = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    shapes, c_in = {}, 3
    for s, convs in enumerate(vgg):
        first = 0 if s == 0 else 1  # stages 2-5 start with the max-pool
        for j, c_out in enumerate(convs):
            idx = first + 2 * j
            shapes[f"stages.{s}.{idx}.weight"] = (c_out, c_in, 3, 3)
            shapes[f"stages.{s}.{idx}.bias"] = (c_out,)
            c_in = c_out
    for i, c in enumerate([128, 256, 512, 512]):
        k = 2 ** (i + 2)
        shapes[f"side_prep.{i}.weight"] = (16, c, 3, 3)
        shapes[f"side_prep.{i}.bias"] = (16,)
        shapes[f"score_dsn.{i}.weight"] = (1, 16, 1, 1)
        shapes[f"score_dsn.{i}.bias"] = (1,)
        shapes[f"upscale.{i}.weight"] = (16, 16, k, k)
        shapes[f"upscale_.{i}.weight"] = (1, 1, k, k)
    shapes["fuse.weight"] = (1, 64, 1, 1)
    shapes["fuse.bias"] = (1,)
    return shapes


def test_official_layout_loads_strictly(tmp_path):
    shapes = official_state_shapes()
    assert len(shapes) == 52
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    net = OSVOSNet(1.0)
    net.load_state_dict(state, strict=True)
    # hand count: VGG16 convs 14,714,688 + side_prep 202,816 + score_dsn 68 + upscale 348,160
    # + upscale_ 1,360 + fuse 65
    assert sum(p.numel() for p in net.parameters()) == 15_267_157
    torch.save(state, tmp_path / "parent_epoch-239.pth")
    loaded = load_parent(tmp_path / "parent_epoch-239.pth", width=1.0)
    assert torch.equal(loaded.fuse.weight, state["fuse.weight"])


@pytest.mark.parametrize("hw", [(32, 48), (33, 50), (57, 91)])
def test_output_shapes_equal_input(hw):
    net = OSVOSNet(0.0625)
    out = net(torch.randn(2, 3, *hw))
    assert len(out) == 5
    assert all(tuple(o.shape) == (2, 1, *hw) for o in out)


def test_bilinear_deconvolution():
    np.testing.assert_allclose(bilinear_kernel(4)[0].numpy(), np.array([0.25, 0.75, 0.75, 0.25]) * 0.25)
    net = OSVOSNet(0.0625)
    up = net.upscale[0]  # k=4, s=2: upsamples a constant map to the same constant in the interior
    y = up(torch.ones(1, 16, 6, 6))
    np.testing.assert_allclose(y[0, :, 2:-2, 2:-2].detach().numpy(), 1.0, rtol=1e-6)


def test_optimizer_groups_follow_official_protocol():
    cfg = OSVOSConfig()
    net = OSVOSNet(0.0625)
    opt = build_optimizer(net, cfg)
    lrs = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert lrs[id(net.stages[0][0].weight)] == (1e-8, 2e-4)
    assert lrs[id(net.stages[0][0].bias)] == (2e-8, 0.0)
    assert lrs[id(net.upscale[3].weight)][0] == 0.0
    assert lrs[id(net.fuse.weight)] == (pytest.approx(1e-10), 2e-4)
    assert lrs[id(net.fuse.bias)][0] == pytest.approx(2e-10)
    assert id(net.score_dsn[0].weight) not in lrs  # frozen
    assert opt.defaults["momentum"] == 0.9


# ----------------------------------------------------------------------------------- loss
def _sp(x):  # softplus by hand
    return math.log1p(math.exp(x))


def test_class_balanced_loss_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0, 3.0, -2.0]).view(2, 1, 1, 3)
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).view(2, 1, 1, 3)
    # 1 positive, 5 negatives: positive term weighted 5/6, negative terms 1/6; sum / batch size 2
    pos = _sp(-2.0)
    neg = _sp(-1.0) + _sp(0.5) + _sp(0.0) + _sp(3.0) + _sp(-2.0)
    expected = (5 / 6 * pos + 1 / 6 * neg) / 2
    assert class_balanced_bce(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert class_balanced_bce(logits, labels, size_average=True).item() == pytest.approx(expected * 2 / 6, rel=1e-6)
    # labels are binarised at 0.5
    assert class_balanced_bce(logits, labels * 0.7).item() == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------------- augmentation
def test_augmentation_keeps_image_and_mask_aligned():
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(96.0), indexing="ij")
    masks = torch.stack([((yy - 30) ** 2 / 15**2 + (xx - 40 - 8 * i) ** 2 / 25**2 <= 1).float() for i in range(4)])[:, None]
    images = masks.repeat(1, 3, 1, 1) * 200.0  # the image encodes the mask
    img, msk = standard_augment(images, masks, g)
    assert not torch.equal(msk, masks)  # something happened
    agree = ((img[:, 0] > 100) == (msk[:, 0] > 0.5)).float().mean()
    assert agree > 0.99
    assert set(msk.unique().tolist()) <= {0.0, 1.0}  # nearest keeps labels
    # reproducible from the generator seed
    img2, msk2 = standard_augment(images, masks, torch.Generator().manual_seed(1))
    assert torch.equal(img, img2) and torch.equal(msk, msk2)


def test_affine_flip_rotation_direction_and_scale():
    x = torch.arange(5 * 5, dtype=torch.float32).view(1, 1, 5, 5)
    t = affine_theta(torch.tensor([True]), torch.tensor([0.0]), torch.tensor([1.0]), 5, 5)
    img, msk = apply_affine(x, x, t)
    torch.testing.assert_close(img, x.flip(-1), atol=1e-4, rtol=0)
    assert torch.equal(msk, x.flip(-1))
    # +90 degrees = counter-clockwise on screen (cv2.getRotationMatrix2D convention) = torch.rot90(k=1)
    t = affine_theta(torch.tensor([False]), torch.tensor([90.0]), torch.tensor([1.0]), 5, 5)
    assert torch.equal(apply_affine(x, x, t)[1], torch.rot90(x, 1, dims=(-2, -1)))
    # non-square image: a pixel 2 to the right of the centre goes 2 above it after +90 degrees
    dot = torch.zeros(1, 1, 7, 9)
    dot[0, 0, 3, 6] = 1
    t = affine_theta(torch.tensor([False]), torch.tensor([90.0]), torch.tensor([1.0]), 7, 9)
    m = apply_affine(dot, dot, t)[1]
    assert m[0, 0, 1, 4] == 1 and m.sum() == 1
    # scale 0.5: centre kept, border filled with 0 (the mean after mean subtraction)
    ones = torch.ones(1, 1, 9, 9)
    t = affine_theta(torch.tensor([False]), torch.tensor([0.0]), torch.tensor([0.5]), 9, 9)
    _, m = apply_affine(ones, ones, t)
    assert m[0, 0, 4, 4] == 1 and m[0, 0, 0, 0] == 0 and m.sum() < 81 / 2


# ----------------------------------------------------------------------------------- batch doubling
def _tiny_inputs(h=32, w=48, n_syn=5):
    image = torch.full((3, h, w), 10, dtype=torch.uint8)
    mask = torch.zeros(h, w)
    mask[8:24, 12:36] = 1
    syn = torch.stack([torch.full((3, h, w), 100 + i, dtype=torch.uint8) for i in range(n_syn)])
    syn_m = torch.zeros(n_syn, h, w)
    for i in range(n_syn):
        syn_m[i, i : i + 10, 5:20] = 1
    return image, mask, syn, syn_m


def test_synthetic_batch_doubling_one_real_one_synthetic():
    cfg = from_dict(OSVOSConfig, {"width": 0.0625, "synthetic": True, "input_normalisation": "imagenet"})
    assert cfg.n_synthetic == 1
    image, mask, syn, syn_m = _tiny_inputs()
    tr = FinetuneTrainer(OSVOSNet(0.0625), cfg, image, mask, syn, syn_m, seed=0)
    drawn = []
    for _ in range(20):
        x, y = tr.make_batch()
        assert x.shape == (2, 3, 32, 48) and y.shape == (2, 1, 32, 48)
        i = int(tr.last_synthetic_index[0])
        drawn.append(i)
        torch.testing.assert_close(x[:1], data.normalise(image[None], "imagenet"))
        torch.testing.assert_close(x[1:], data.normalise(syn[i][None], "imagenet"))
        assert torch.equal(y[0, 0], mask) and torch.equal(y[1, 0], syn_m[i])
    assert len(set(drawn)) >= 3  # random draws from the pool
    with pytest.raises(ConfigError):
        FinetuneTrainer(OSVOSNet(0.0625), cfg, image, mask)  # synthetic without a pool
    plain = FinetuneTrainer(OSVOSNet(0.0625), from_dict(OSVOSConfig, {"width": 0.0625}), image, mask)
    assert plain.make_batch()[0].shape[0] == 1


def test_merge_objects_rule():
    probs = np.array([[[0.9, 0.2, 0.6]], [[0.4, 0.3, 0.7]]])
    np.testing.assert_array_equal(merge_objects(probs, [1, 3], 0.5), [[1, 0, 3]])


def test_predict_returns_native_size():
    cfg = from_dict(OSVOSConfig, {"width": 0.0625, "resolution": [32, 48], "predict_batch": 2})
    frames = [np.random.default_rng(i).integers(0, 255, (40, 60, 3), dtype=np.uint8) for i in range(3)]
    p = predict_sequence(OSVOSNet(0.0625), frames, cfg)
    assert p.shape == (3, 40, 60) and p.dtype == np.float32 and (p >= 0).all() and (p <= 1).all()


# ----------------------------------------------------------------------------------- resume
def test_resume_equals_uninterrupted(tmp_path):
    cfg = from_dict(OSVOSConfig, {"width": 0.0625, "synthetic": True, "standard_aug": True, "n_ave_grad": 3,
                                  "lr": 1e-4, "input_normalisation": "imagenet"})
    image, mask, syn, syn_m = _tiny_inputs()
    torch.manual_seed(0)
    init = OSVOSNet(0.0625).state_dict()

    def trainer():
        net = OSVOSNet(0.0625)
        net.load_state_dict(init)
        return FinetuneTrainer(net, cfg, image, mask, syn, syn_m, seed=3)

    loop = dict(checkpoint_every=1, log_every=1, seed=3, progress=False)
    a = trainer()
    run_training(a, tmp_path / "a", LoopConfig(iterations=4, **loop))
    b = trainer()
    run_training(b, tmp_path / "b", LoopConfig(iterations=2, **loop))  # "killed" mid accumulation window
    b = trainer()
    assert run_training(b, tmp_path / "b", LoopConfig(iterations=4, **loop)) == 2
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert not torch.equal(sa["fuse.weight"], init["fuse.weight"])  # training changed the weights
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------------- CLI smoke
def _build_davis(root: Path, h=32, w=48):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    for s, seq in enumerate(["seqa", "seqb"]):
        for t in range(4):
            lab = np.zeros((h, w), np.int64)
            lab[(yy - 12) ** 2 + (xx - 14 - t) ** 2 <= 36] = 1
            if s == 0:
                lab[(yy - 20) ** 2 + (xx - 34 + t) ** 2 <= 25] = 2
            img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            img[lab == 1] = [220, 40, 40]
            img[lab == 2] = [40, 40, 220]
            write_image(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg", img)
            write_mask(root / "Annotations" / "480p" / seq / f"{t:05d}.png", lab)
    for year, seqs in (("2016", ["seqb"]), ("2017", ["seqa", "seqb"])):
        p = root / "ImageSets" / year / "val.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(seqs) + "\n")
    (root / "train.txt").write_text("seqa\nseqb\n")
    # synthetic pool for seqa at another size (resized to the frame size by the fine-tuning)
    syn = root / "syn"
    kept = []
    for i in range(3):
        lab = np.zeros((24, 40), np.int64)
        lab[4 + i : 12 + i, 6:16] = 1
        lab[14:20, 24 + i : 32 + i] = 2
        img = np.where(lab[..., None] > 0, 200, 30).astype(np.uint8).repeat(3, axis=2)
        write_image(syn / f"img{i}.png", img)
        write_mask(syn / f"mask{i}.png", lab)
        kept.append({"image": f"img{i}.png", "mask": f"mask{i}.png"})
    (syn / "manifest.json").write_text(json.dumps({"kept": kept}))


def test_cli_parent_finetune_evaluate(tmp_path):
    from downstream.osvos_cli import main

    root = tmp_path / "DAVIS"
    _build_davis(root)
    params = {"width": 0.0625, "input_normalisation": "imagenet", "log_every": 1, "checkpoint_every": 2}
    pp = json.dumps({**params, "parent_iterations": 3, "parent_batch": 2})
    assert main(["parent", "--davis-root", str(root), "--split-file", str(root / "train.txt"),
                 "--out", str(tmp_path / "parent"), "--params", pp, "--seed", "0", "--device", "cpu"]) == 0
    parent = tmp_path / "parent" / "parent.pth"
    assert load_parent(parent).width == 0.0625

    fp = json.dumps({**params, "n_passes": 4, "n_ave_grad": 2, "lr": 1e-5, "standard_aug": True})
    out_a = tmp_path / "res17" / "seqa"
    assert main(["finetune", "--davis-root", str(root), "--sequence", "seqa", "--mode", "2017",
                 "--parent", str(parent), "--synthetic-manifest", str(root / "syn" / "manifest.json"),
                 "--out", str(out_a), "--params", fp, "--seed", "1", "--device", "cpu"]) == 0
    done = json.loads((out_a / "done.json").read_text())
    assert done["objects"] == [1, 2] and done["synthetic_pool"] == 3 and done["config"]["synthetic"] is True
    assert sorted(p.name for p in (out_a / "predictions").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    assert (out_a / "objects" / "2" / "checkpoint.pt").exists()

    out_b = tmp_path / "res16" / "seqb"
    assert main(["finetune", "--davis-root", str(root), "--sequence", "seqb", "--mode", "2016",
                 "--parent", str(parent), "--synthetic-manifest", "none",
                 "--out", str(out_b), "--params", fp, "--seed", "1", "--device", "cpu"]) == 0

    # results folders in the <results>/<sequence>/NNNNN.png layout
    res17 = tmp_path / "eval17"
    for seq, out in (("seqa", out_a),):
        (res17 / seq).mkdir(parents=True)
        for p in (out / "predictions").iterdir():
            (res17 / seq / p.name).write_bytes(p.read_bytes())
    csv = tmp_path / "j17.csv"
    assert main(["evaluate", "--davis-root", str(root), "--results", str(res17), "--sequences", "seqa",
                 "--mode", "2017", "--out", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert list(df["sequence"]) == ["seqa", "seqa", "MEAN"]
    assert df["J&F"].between(0, 1).all()
    assert df["J&F"].iloc[-1] == pytest.approx(df["J&F"].iloc[:2].mean(), abs=1e-5)

    res16 = tmp_path / "eval16"
    (res16 / "seqb").mkdir(parents=True)
    for p in (out_b / "predictions").iterdir():
        (res16 / "seqb" / p.name).write_bytes(p.read_bytes())
    csv16 = tmp_path / "j16.csv"
    proc = subprocess.run([sys.executable, "-m", "downstream.osvos_cli", "evaluate", "--davis-root", str(root),
                           "--results", str(res16), "--mode", "2016", "--out", str(csv16)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert list(pd.read_csv(csv16)["sequence"]) == ["seqb", "MEAN"]  # default list ImageSets/2016/val.txt

    # a contradicting synthetic flag is a configuration error (exit code 2)
    assert main(["finetune", "--davis-root", str(root), "--sequence", "seqb", "--mode", "2016",
                 "--parent", str(parent), "--synthetic-manifest", "none", "--out", str(tmp_path / "x"),
                 "--params", json.dumps({"synthetic": True}), "--device", "cpu"]) == 2


def test_non_finite_loss_fails_loudly():
    from downstream.osvos.finetune import check_finite

    check_finite(torch.tensor(1.0), 0)
    with pytest.raises(FloatingPointError, match="iteration 7"):
        check_finite(torch.tensor(float("nan")), 7)
