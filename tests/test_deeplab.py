"""DeepLab-V3 + ResNeSt-50 downstream system (thesis l.1147, l.1255; Tables 4.6, 4.7)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn

from downstream import deeplab_cli
from downstream.deeplab.config import DeepLabConfig, IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
from downstream.deeplab.data import SegmentationSet, apply_aug, draw_aug
from downstream.deeplab.evaluate import confusion_on_set
from downstream.deeplab.model import build_deeplab, load_encoder_imagenet
from downstream.deeplab.train import DeepLabTrainer, poly_lr
from gan_core.errors import ConfigError, DataError
from gan_core.metrics.segmentation import mean_iou
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.images import write_image, write_mask

K = 3
STEP = 80  # image value = label * STEP, so the label can be read back from the image


def tiny_cfg(**kw) -> DeepLabConfig:
    base = dict(backbone="resnet18d", pretrained_backbone=False, image_size=(32, 32), batch_size=2, iterations=3,
                checkpoint_every=1, log_every=1)
    base.update(kw)
    return DeepLabConfig(**base)


def make_folder(root, n=4, h=40, w=48, ignore_block=True):
    """Label maps of 3 vertical bands with random borders (asymmetric, so a flip is visible); image = label*80,
    synthetic = 255 - image."""
    rng = np.random.default_rng(0)
    for sub in ("images", "labels", "synthetic"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a, b = sorted(rng.choice(np.arange(6, w - 6), 2, replace=False))
        lab = np.zeros((h, w), np.int64)
        lab[:, a:] = 1
        lab[:, b:] = 2
        img = np.repeat((lab * STEP).astype(np.uint8)[..., None], 3, axis=2)
        if ignore_block:
            lab[:4, :4] = 255
        write_image(root / "images" / f"im{i}.png", img)
        write_mask(root / "labels" / f"im{i}.png", lab)
        write_image(root / "synthetic" / f"im{i}.png", 255 - img)
    return root


def denorm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(IMAGENET_STD_RGB).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN_RGB).view(3, 1, 1)


# ----------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def resnest_model():
    return build_deeplab(DeepLabConfig(), K)


def test_resnest50d_encoding_head_builds_offline_and_keeps_input_size(resnest_model):
    m = resnest_model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        c3, c4 = m.features(x)
        y = m(x)
        m.train()
        out, aux = m.forward_train(x)
    assert y.shape == (2, K, 64, 64) and out.shape == aux.shape == (2, K, 64, 64)
    assert c3.shape == (2, 1024, 8, 8) and c4.shape == (2, 2048, 8, 8)  # output stride 8
    # head widths of Encoding's DeepLabV3Head / FCNHead, counted by hand (conv weights, BN affine, biases)
    cbr = lambda cin, cout, k: cin * cout * k * k + 2 * cout  # conv (no bias) + BN
    aspp = cbr(2048, 256, 1) * 2 + 3 * cbr(2048, 256, 3) + cbr(1280, 256, 1)
    head = aspp + cbr(256, 256, 3) + 256 * K + K
    auxh = cbr(1024, 256, 3) + 256 * K + K
    assert sum(p.numel() for p in m.head.parameters()) == head
    assert sum(p.numel() for p in m.auxlayer.parameters()) == auxh


def test_encoder_keys_equal_timm_resnest50d_and_loader_is_strict(resnest_model, tmp_path):
    timm_full = timm.create_model("resnest50d", pretrained=False)
    ref = timm_full.state_dict()
    assert set(resnest_model.backbone.state_dict()) == {k for k in ref if not k.startswith("fc.")}
    # an "Encoding ImageNet file" made from timm's own model (with its fc.*), loaded strictly
    path = tmp_path / "resnest50-test.pth"
    torch.save(ref, path)
    assert load_encoder_imagenet(resnest_model, path) == path
    got = resnest_model.backbone.state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in got)
    # a DeepLab checkpoint layout (pretrained.* + head keys), given as the folder holding the file
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"state_dict": {**{f"pretrained.{k}": v for k, v in ref.items()}, "head.x": torch.zeros(1)}},
               folder / "deeplab.pth")
    load_encoder_imagenet(resnest_model, folder)
    # a missing key and a wrong shape are errors naming the file
    bad = dict(ref)
    bad.pop("layer1.0.conv1.weight")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth.*1 missing"):
        load_encoder_imagenet(resnest_model, tmp_path / "bad.pth")
    bad = dict(ref, **{"conv1.0.weight": torch.zeros(1)})
    torch.save(bad, tmp_path / "bad2.pth")
    with pytest.raises(DataError, match="bad2.pth.*1 shape"):
        load_encoder_imagenet(resnest_model, tmp_path / "bad2.pth")


def test_smp_head_matches_smp_deeplabv3_parameter_count():
    import segmentation_models_pytorch as smp

    ours = build_deeplab(tiny_cfg(head="smp"), 5)
    ref = smp.DeepLabV3(encoder_name="tu-resnet18d", encoder_weights=None, classes=5, encoder_output_stride=8)
    assert ours.auxlayer is None
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(ours) == count(ref)


def test_config_rejects_pretrained_tiny_backbone():
    with pytest.raises(ConfigError, match="pretrained_backbone"):
        DeepLabConfig(backbone="resnet18d")


# ----------------------------------------------------------------------------------- batches
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("dl"))


def test_batch_is_real_then_synthetic_with_identical_labels(folder):
    cfg = tiny_cfg(synthetic_counterparts=True)
    data = SegmentationSet.from_folders(folder / "images", folder / "labels", cfg, folder / "synthetic")
    tr = DeepLabTrainer(cfg, data, K, seed=3)
    seen = []
    for it in range(2):  # one epoch = 4 // 2 iterations: every image exactly once
        x, y, syn = tr.batch(it)
        assert x.shape == (4, 3, 32, 32) and y.shape == (4, 32, 32)
        assert syn.tolist() == [False, True, False, True]
        assert torch.equal(y[0::2], y[1::2])
        real, fake = denorm(x[0::2]), denorm(x[1::2])
        valid = (y[0::2] != 255)[:, None].expand_as(real)
        # synthetic = 255 - real before augmentation; identical geometry keeps that relation pixel by pixel
        torch.testing.assert_close(fake[valid], 1.0 - real[valid], atol=1e-5, rtol=0)
        seen += tr.indices(it)
    assert sorted(seen) == [0, 1, 2, 3]
    # the baseline (no synthetic) batch holds the same real images and labels
    base = DeepLabTrainer(tiny_cfg(), SegmentationSet.from_folders(folder / "images", folder / "labels", tiny_cfg()),
                          K, seed=3)
    xb, yb, _ = base.batch(1)
    assert torch.equal(yb, tr.batch(1)[1][0::2]) and torch.allclose(xb, tr.batch(1)[0][0::2])


def test_augmentation_keeps_label_aligned_with_image(folder):
    cfg = tiny_cfg(synthetic_counterparts=True)
    data = SegmentationSet.from_folders(folder / "images", folder / "labels", cfg, folder / "synthetic")
    gen = torch.Generator().manual_seed(0)
    flips, scales = set(), []
    for trial in range(12):
        img, lab, syn = data.load(trial % len(data))
        p = draw_aug(gen, cfg)
        flips.add(p.flip)
        scales.append(p.scale)
        a_img, a_lab = apply_aug(img, lab, p, (32, 32), 255)
        a_syn, _ = apply_aug(syn, None, p, (32, 32), 255)
        decoded = torch.round(a_img[0] * 255 / STEP).long()  # label read back from the image
        decoded_syn = torch.round((1 - a_syn[0]) * 255 / STEP).long()
        keep = (a_lab != 255)
        assert keep.any()
        assert (decoded[keep] == a_lab[keep]).float().mean() > 0.9
        assert (decoded_syn[keep] == a_lab[keep]).float().mean() > 0.9
        if p.flip:  # negative control: the un-flipped label would not fit
            unflipped = a_lab.flip(-1)
            k2 = keep & (unflipped != 255)
            assert (decoded[k2] == unflipped[k2]).float().mean() < 0.9
    assert flips == {True, False} and min(scales) < 1 < max(scales)
    assert all(0.5 <= s <= 2.0 for s in scales)


# ----------------------------------------------------------------------------------- schedule, resume
def test_poly_lr_by_hand(folder):
    assert poly_lr(0.001, 0, 10) == pytest.approx(0.001)
    assert poly_lr(0.001, 5, 10) == pytest.approx(0.001 * 0.5 ** 0.9)  # 5.3589e-4
    assert poly_lr(0.001, 5, 10) == pytest.approx(5.358867e-4, rel=1e-6)
    assert poly_lr(0.001, 9, 10) == pytest.approx(0.001 * 0.1 ** 0.9)
    cfg = tiny_cfg(batch_size=2, iterations=10)
    assert cfg.learning_rate == pytest.approx(0.004 / 16 * 2)  # Encoding lr rule
    tr = DeepLabTrainer(cfg, SegmentationSet.from_folders(folder / "images", folder / "labels", cfg), K)
    tr.set_lr(5)
    lrs = [g["lr"] for g in tr.optimizer.param_groups]
    assert lrs == pytest.approx([0.0005 * 0.5 ** 0.9, 0.005 * 0.5 ** 0.9])  # head and aux x10


def _trainer(folder, seed=1):
    cfg = tiny_cfg(synthetic_counterparts=True)
    data = SegmentationSet.from_folders(folder / "images", folder / "labels", cfg, folder / "synthetic")
    return DeepLabTrainer(cfg, data, K, seed=seed)


def test_resume_equals_uninterrupted(folder, tmp_path):
    a = _trainer(folder)
    run_training(a, tmp_path / "a", LoopConfig(iterations=3, seed=1, progress=False))
    b = _trainer(folder)
    run_training(b, tmp_path / "b", LoopConfig(iterations=2, checkpoint_every=1, seed=1, progress=False))
    c = _trainer(folder)  # a fresh process resuming from the checkpoint of iteration 2
    assert run_training(c, tmp_path / "b", LoopConfig(iterations=3, seed=1, progress=False)) == 1
    sa, sc = a.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not torch.equal(sa["head.block.4.weight"], _trainer(folder).model.state_dict()["head.block.4.weight"])


# ----------------------------------------------------------------------------------- evaluation
class _FromImage(nn.Module):
    """Stub network: one-hot logits of the label encoded in the image (perfect), or a constant class."""

    def __init__(self, constant: int | None = None):
        super().__init__()
        self.constant = constant

    def forward(self, x):
        lab = torch.round(denorm(x)[:, 0] * 255 / STEP).long().clamp(0, K - 1)
        if self.constant is not None:
            lab = torch.full_like(lab, self.constant)
        return torch.nn.functional.one_hot(lab, K).permute(0, 3, 1, 2).float()


def test_evaluate_perfect_and_hand_case(folder):
    cfg = tiny_cfg(image_size=(40, 48), eval_batch=3)  # native size: no resampling
    data = SegmentationSet.from_folders(folder / "images", folder / "labels", cfg)
    conf = confusion_on_set(_FromImage(), data, K)
    assert 100 * mean_iou(conf) == pytest.approx(100.0)
    assert int(conf.sum()) == 4 * (40 * 48 - 16)  # ignored corner left out
    conf0 = confusion_on_set(_FromImage(constant=0), data, K)
    labels = np.stack([data.raw_label(i) for i in range(len(data))])
    n0, n = (labels == 0).sum(), (labels != 255).sum()
    assert mean_iou(conf0) == pytest.approx((n0 / n + 0 + 0) / 3)  # IoU_0 = n0/n, classes 1, 2 -> 0


# ----------------------------------------------------------------------------------- CLI
def test_cli_train_and_evaluate(folder, tmp_path, capsys):
    params = json.dumps({"backbone": "resnet18d", "pretrained_backbone": False, "image_size": [32, 32],
                         "batch_size": 2, "iterations": 3})
    out = tmp_path / "run"
    rc = deeplab_cli.main(["train", "--images", str(folder / "images"), "--labels", str(folder / "labels"),
                           "--synthetic", str(folder / "synthetic"), "--num-classes", str(K), "--ignore", "255",
                           "--out", str(out), "--params", params, "--seed", "0", "--device", "cpu",
                           "--encoder-weights", "none"])
    assert rc == 0
    done = json.loads((out / "done.json").read_text())
    assert done["iterations"] == 3 and done["config"]["synthetic_counterparts"] is True
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 1  # log_every 50 -> the final row only
    res_path = tmp_path / "eval.json"
    rc = deeplab_cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--images", str(folder / "images"),
                           "--labels", str(folder / "labels"), "--num-classes", str(K), "--out", str(res_path),
                           "--device", "cpu", "--groups", "0-0,1-2", "--freq-labels", str(folder / "labels")])
    assert rc == 0
    res = json.loads(res_path.read_text())
    assert 0.0 <= res["miou_percent"] <= 100.0 and res["n_images"] == 4
    assert [g["label"] for g in res["frequency_groups"]["groups"]] == ["0-0", "1-2"]
    # a missing synthetic counterpart is a clear error (exit code 2) naming the file
    (folder / "synthetic" / "im3.png").rename(tmp_path / "moved.png")
    try:
        rc = deeplab_cli.main(["train", "--images", str(folder / "images"), "--labels", str(folder / "labels"),
                               "--synthetic", str(folder / "synthetic"), "--num-classes", str(K),
                               "--out", str(tmp_path / "run2"), "--params", params, "--device", "cpu",
                               "--encoder-weights", "none"])
    finally:
        (tmp_path / "moved.png").rename(folder / "synthetic" / "im3.png")
    assert rc == 2
    assert "im3.png" in capsys.readouterr().err
