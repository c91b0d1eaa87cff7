"""Segmentation metrics, the OSMIS mask-alignment protocol and the OASIS colour/texture distances."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.errors import DataError
from gan_core.metrics import colour_texture as ct
from gan_core.metrics import segmentation as seg


# ----------------------------------------------------------------------------- confusion / mIoU
def test_confusion_matrix_hand_case_with_ignore_and_absent_class():
    gt = np.array([[0, 0, 1], [1, 255, 2], [2, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2], [0, 2, 3]])  # pixels under 255 are not counted
    conf = seg.confusion_matrix(pred, gt, num_classes=5, ignore_index=255).numpy()
    expected = np.zeros((5, 5), dtype=np.int64)
    expected[0, 0], expected[0, 1] = 1, 1
    expected[1, 1] = 2
    expected[2, 2], expected[2, 0] = 2, 1
    np.testing.assert_array_equal(conf, expected)
    # IoU_0 = 1 / (2 + 2 - 1) = 1/3; IoU_1 = 2 / (2 + 3 - 2) = 2/3; IoU_2 = 2 / 3;
    # classes 3 (only under the ignored pixel) and 4 are absent from both -> excluded
    iou = seg.per_class_iou(conf)
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 2 / 3])
    assert np.isnan(iou[3]) and np.isnan(iou[4])
    assert seg.mean_iou(conf) == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert seg.pixel_accuracy(conf) == pytest.approx(5 / 7)


def test_predicted_but_absent_class_counts_zero():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])
    conf = seg.confusion_matrix(pred, gt, 3, ignore_index=None)
    np.testing.assert_allclose(seg.per_class_iou(conf), [0.5, 1.0, 0.0])
    assert seg.mean_iou(conf) == pytest.approx(0.5)


def test_confusion_matrix_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="outside 0..2"):
        seg.confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)


def test_batched_accumulation_matches_per_class_numpy_loop():
    rng = np.random.default_rng(0)
    k = 6
    acc = seg.ConfusionAccumulator(k, ignore_index=255)
    gts, preds = [], []
    for _ in range(3):
        gt = rng.integers(0, k, size=(2, 17, 23))
        gt[rng.random(gt.shape) < 0.1] = 255
        gt[gt == 4] = 3  # class 4 never in GT
        pred = rng.integers(0, k, size=gt.shape)
        pred[pred == 5] = 0  # class 5 never predicted
        acc.update(torch.from_numpy(pred), torch.from_numpy(gt))
        gts.append(gt)
        preds.append(pred)
    gt, pred = np.concatenate(gts), np.concatenate(preds)
    valid = gt != 255
    ious = []
    for c in range(k):  # second source: per-class set operations
        p, t = (pred == c) & valid, (gt == c) & valid
        union = (p | t).sum()
        ious.append((p & t).sum() / union if union else np.nan)
    np.testing.assert_allclose(seg.per_class_iou(acc.matrix), ious)
    assert seg.mean_iou(acc.matrix) == pytest.approx(np.nanmean(ious))
    assert seg.pixel_accuracy(acc.matrix) == pytest.approx((pred[valid] == gt[valid]).mean())


def test_iou_by_frequency_groups_hand_case():
    # confusion with IoU = [1.0, 0.5, 0.0, nan, 0.25] on the diagonal classes
    conf = np.zeros((5, 5))
    conf[0, 0] = 10
    conf[1, 1], conf[1, 0] = 2, 2          # adds FP to class 0 -> IoU_0 = 10/12
    conf[2, 1] = 3                          # IoU_1 = 2/(4+5-2); IoU_2 = 0
    conf[4, 4], conf[4, 2] = 1, 3           # IoU_4 = 1/4
    iou = seg.per_class_iou(conf)
    np.testing.assert_allclose(iou, [10 / 12, 2 / 7, 0.0, np.nan, 0.25])
    freq = [5, 50, 1, 20, 10]  # ranks: class1, class3, class4, class0, class2
    out = seg.iou_by_frequency_groups(conf, freq, groups="0-1,2-3,4-4")
    assert out["order"] == [1, 3, 4, 0, 2]
    g = out["groups"]
    assert g[0]["classes"] == [1, 3] and g[0]["miou"] == pytest.approx(2 / 7)  # class 3 absent -> skipped
    assert g[1]["classes"] == [4, 0] and g[1]["miou"] == pytest.approx((0.25 + 10 / 12) / 2)
    assert g[2]["classes"] == [2] and g[2]["miou"] == 0.0
    assert g[0]["pixel_fraction"] == pytest.approx(70 / 86)
    assert out["all"] == pytest.approx(np.nanmean(iou))
    assert seg.parse_groups("cityscapes") == ((0, 4), (5, 8), (9, 12), (13, 18))
    with pytest.raises(ValueError):
        seg.iou_by_frequency_groups(conf, freq[:4], groups="ade20k")


def test_thresholded_iou_by_hand():
    # ceil(clamp(20 (IoU - 0.5), 0, 10)) / 10: 0.5 -> 0; 0.74 -> ceil(4.8)/10; 0.95 -> 9/10; 1 -> 1
    vals = seg.thresholded_iou(torch.tensor([0.5, 0.74, 0.95, 1.0])).tolist()
    assert vals == pytest.approx([0.0, 0.5, 0.9, 1.0])
    # per-image IoU with the official smoothing: a class absent from both scores IoU 1
    pred = torch.tensor([[[0, 0, 1, 1]]])
    gt = torch.tensor([[[0, 1, 1, 1]]])
    iou = seg.per_image_class_iou(pred, gt, num_classes=3, ignore_index=255)
    np.testing.assert_allclose(iou[0].numpy(), [(1 + 1e-6) / (2 + 1e-6), (2 + 1e-6) / (3 + 1e-6), 1.0])


# ----------------------------------------------------------------------------- mask alignment
def _toy_pairs(n=3, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, h, w, generator=g) * 0.2 - 0.6
    masks = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):
        y0, x0 = 4 + 3 * i, 6 + 5 * i
        masks[i, y0:y0 + 12, x0:x0 + 16] = 1
        masks[i, h - 8:, :10] = 2
    images[:, 0] += masks.float() * 0.6  # colour codes the class, so the UNet can learn it
    return images.clamp(-1, 1), masks


def test_flip_shift_augmentation_is_exact_and_joint():
    from gan_core.metrics.mask_alignment import MaskAlignmentConfig, augment_pairs

    cfg = MaskAlignmentConfig(aug_prob=1.0, hflip_prob=1.0, translate_fraction=(0.25, 0.25))
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8).expand(2, 3, 8, 8)
    lab = torch.arange(64).reshape(1, 8, 8).expand(2, 8, 8) % 7
    xo, lo = augment_pairs(x, lab, cfg, torch.Generator().manual_seed(1))
    # shifts of exactly 2 px with mirrored fill: every output value is an input pixel value
    assert torch.equal(xo.round(), xo.round().clamp(0, 127)) and (xo - xo.round()).abs().max() < 1e-3
    # image channel 0 of sample 0 encodes the source pixel index -> the label must follow it
    src = xo[0, 0].round().long()
    assert torch.equal(lo[0], src % 64 % 7)


def test_mask_alignment_smoke_and_resume_after_kill(tmp_path, monkeypatch):
    from gan_core.metrics import mask_alignment as ma

    images, masks = _toy_pairs()
    real_img, real_mask = images[0], masks[0].clone()
    real_mask[0, 0] = 255  # a void pixel
    cfg = ma.MaskAlignmentConfig(iterations=4, batch_size=2, eval_batches=2, checkpoint_every=2)
    ref = ma.run_mask_alignment(images, masks, real_img, real_mask, tmp_path / "a", cfg, seed=3)
    assert ref["num_classes"] == 3 and ref["weights_label"] == "random-init(seed=3)"
    for key in ("thresholded_iou", "miou", "pixel_accuracy"):
        assert 0.0 <= ref[key] <= 1.0
    assert (tmp_path / "a" / "done.json").is_file()

    orig = ma.MaskAlignmentTrainer.train_step

    def killed(self, iteration):
        if iteration == 3:
            raise KeyboardInterrupt("simulated kill")
        return orig(self, iteration)

    monkeypatch.setattr(ma.MaskAlignmentTrainer, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        ma.run_mask_alignment(images, masks, real_img, real_mask, tmp_path / "b", cfg, seed=3)
    assert (tmp_path / "b" / "checkpoint.pt").is_file() and not (tmp_path / "b" / "done.json").exists()

    calls = []

    def counted(self, iteration):
        calls.append(iteration)
        return orig(self, iteration)

    monkeypatch.setattr(ma.MaskAlignmentTrainer, "train_step", counted)
    res = ma.run_mask_alignment(images, masks, real_img, real_mask, tmp_path / "b", cfg, seed=3)
    assert calls == [2, 3]  # resumed from the checkpoint at iteration 2
    for key in ("thresholded_iou", "miou", "pixel_accuracy"):
        assert res[key] == pytest.approx(ref[key], abs=1e-6)
    # a different config in the same work dir is refused
    with pytest.raises(Exception, match="other settings"):
        ma.run_mask_alignment(images, masks, real_img, real_mask, tmp_path / "b",
                              ma.MaskAlignmentConfig(iterations=5, batch_size=2, eval_batches=2), seed=3)


def test_binary_quirk_and_label_checks():
    from gan_core.metrics.mask_alignment import MaskAlignmentConfig, prepare_labels

    real = torch.tensor([[0, 1], [2, 255]])
    fake = torch.tensor([[[0, 2], [1, 1]]])
    r, f, k = prepare_labels(real, fake, MaskAlignmentConfig(official_binary_quirk=True))
    assert k == 2 and r.tolist() == [[0, 1], [1, 1]] and f.tolist() == [[[0, 1], [1, 1]]]
    _, _, k = prepare_labels(real, fake, MaskAlignmentConfig())
    assert k == 3
    with pytest.raises(ValueError, match="labels up to 3"):
        prepare_labels(real, fake + 1, MaskAlignmentConfig())


# ----------------------------------------------------------------------------- colour / texture
def test_emd_identical_zero_and_shift_equals_k_bin_widths():
    from scipy.stats import wasserstein_distance

    h = np.zeros(64)
    h[10] = 1.0
    assert ct.emd_1d(h, h, 4.0) == 0.0
    for k in (1, 5, 30):
        g = np.roll(h, k)
        assert ct.emd_1d(h, g, 4.0) == pytest.approx(4.0 * k)
    rng = np.random.default_rng(1)
    p, q = rng.random(64), rng.random(64)
    centres = -128 + 4.0 * (np.arange(64) + 0.5)
    assert ct.emd_1d(p, q, 4.0) == pytest.approx(wasserstein_distance(centres, centres, p, q))


def test_chi_square_zero_for_identical_and_positive_otherwise():
    p = np.array([3.0, 0.0, 1.0, 6.0])
    assert ct.chi_square(p, 2 * p) == pytest.approx(0.0, abs=1e-12)
    q = np.array([1.0, 1.0, 1.0, 1.0])
    expected = 0.5 * sum((a - b) ** 2 / (a + b) for a, b in zip(p / 10, q / 4))
    assert ct.chi_square(p, q) == pytest.approx(expected)


def test_class_histograms_threshold_and_lbp_range():
    cfg = ct.ColourTextureConfig(min_pixels=100)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    labels = np.zeros((24, 24), dtype=np.int64)
    labels[:5, :5] = 1       # 25 pixels: below the threshold
    labels[-1, -1] = 255     # void
    codes = ct.lbp_codes(img, cfg)
    assert codes.min() >= 0 and codes.max() <= 9
    real, fake = ct.ClassHistograms(cfg), ct.ClassHistograms(cfg)
    real.add(img, labels)
    fake.add(img, labels)
    assert real.pixels.tolist() == [24 * 24 - 26, 25]
    res = ct.compare(real, fake)
    assert res["n_classes_used"] == 1 and res["classes_skipped"] == [1]
    assert res["colour_emd"] == 0.0 and res["texture_chi2"] == pytest.approx(0.0, abs=1e-12)
    other = ct.ClassHistograms(cfg)
    other.add(255 - img, labels)
    res2 = ct.compare(real, other)
    assert res2["colour_emd"] > 0 and res2["texture_chi2"] > 0


# ----------------------------------------------------------------------------------------- CLI
def test_cli_miou_colour_texture_and_errors(tmp_path):
    from gan_core.metrics.seg_cli import main
    from gan_core.utils.images import write_image, write_mask

    rng = np.random.default_rng(0)
    for d in ("gt", "pred", "real", "fake", "labels"):
        (tmp_path / d).mkdir()
    for i in range(2):
        gt = rng.integers(0, 3, size=(16, 20))
        write_mask(tmp_path / "gt" / f"{i}.png", gt)
        write_mask(tmp_path / "pred" / f"{i}.png", np.where(rng.random(gt.shape) < 0.8, gt, 0))
        write_mask(tmp_path / "labels" / f"{i}.png", gt)
        write_image(tmp_path / "real" / f"{i}.png", rng.integers(0, 256, size=(16, 20, 3)))
        write_image(tmp_path / "fake" / f"{i}.png", rng.integers(0, 256, size=(16, 20, 3)))
    out = tmp_path / "miou.json"
    main(["miou", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "3",
          "--groups", "0-0,1-2", "--freq-from", str(tmp_path / "gt"), "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["metric"] == "miou" and 0 < res["value"] <= 1 and "config_hash" in res["provenance"]
    assert len(res["details"]["frequency_groups"]["groups"]) == 2

    out2 = tmp_path / "ct.json"
    main(["colour-texture", "--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"),
          "--labels", str(tmp_path / "labels"), "--out", str(out2), "--params", '{"min_pixels": 10}'])
    res2 = json.loads(out2.read_text())
    assert res2["value"] > 0 and res2["details"]["n_classes_used"] == 3

    (tmp_path / "pred" / "1.png").unlink()
    with pytest.raises(DataError, match="1.png"):
        main(["miou", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "3",
              "--out", str(out)])
    (tmp_path / "fake" / "0.png").unlink()
    with pytest.raises(DataError, match="0.png"):
        main(["colour-texture", "--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"),
              "--labels", str(tmp_path / "labels"), "--out", str(out2)])


def test_cli_mask_alignment(tmp_path):
    from gan_core.metrics.seg_cli import main
    from gan_core.sample.generate import write_samples
    from gan_core.utils.images import write_image, write_mask

    images, masks = _toy_pairs(n=2)
    write_samples(images, masks, tmp_path / "samples")
    real = ((images[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    write_image(tmp_path / "real.png", real)
    write_mask(tmp_path / "real_mask.png", masks[0].numpy())
    out = tmp_path / "ma.json"
    args = ["mask-alignment", "--samples", str(tmp_path / "samples"), "--real-image", str(tmp_path / "real.png"),
            "--real-mask", str(tmp_path / "real_mask.png"), "--out", str(out), "--seed", "1", "--device", "cpu",
            "--encoder-weights", "none", "--params", '{"iterations": 2, "batch_size": 2, "eval_batches": 1}']
    main(args)
    res = json.loads(out.read_text())
    assert res["metric"] == "osmis_mask_alignment_thresholded_iou"
    assert 0 <= res["value"] <= 1 and 0 <= res["details"]["miou"] <= 1
    assert res["details"]["weights_label"] == "random-init(seed=1)"
    # missing manifest weights: a clear error naming the fetch target
    from gan_core.errors import MissingResourceError

    with pytest.raises(MissingResourceError, match="fetch_tv_resnet18"):
        main(args[:-4] + ["--resources", str(tmp_path / "nores"), "--params", '{"iterations": 1}'])


def test_encoder_weights_load_strictly_from_torchvision_layout(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    from gan_core.metrics.mask_alignment import PaddedUnet, load_encoder_weights

    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()  # random weights in the ImageNet file's layout
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    model = PaddedUnet(2)
    assert load_encoder_weights(model, path) == "imagenet:resnet18-f37072fd.pth"
    assert torch.equal(model.net.encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    torch.save({"conv1.weight": state["conv1.weight"]}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth"):
        load_encoder_weights(model, tmp_path / "bad.pth")
