"""OASIS editing (thesis Sec. 4.3.4): 3D-noise global / local resampling and interpolation, the discriminator
as a segmenter, and the figure commands of Figs. 4.7, 4.10-4.12 on a tiny trained run (CPU)."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from gan_core.metrics import d_segmenter as ds
from gan_core.nets.oasis import OASISGenerator
from gan_core.nets.oasis_config import OASISConfig
from gan_core.report.oasis_figures_cli import main as fig_main
from gan_core.report.qualitative import mosaic_size
from gan_core.sample import oasis_noise as on
from gan_core.train.oasis_cli import main as oasis_main
from oasis_tiny import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def _two_region_label(size):
    """Label 1 on the left quarter, label 2 elsewhere: (1, H, W) indices."""
    lab = torch.full((1, size, size), 2, dtype=torch.long)
    lab[..., : size // 4] = 1
    return lab


def _bn_ready(g, oh):
    """Collect BN statistics (cumulative average) on a few noises, then eval mode (as the BN refresh)."""
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        g(oh.expand(4, -1, -1, -1))
    return g.eval()


# --------------------------------------------------------------------------- noise editing
def test_local_resampling_changes_noise_only_inside_and_image_mostly_inside():
    torch.manual_seed(1)
    size = 256  # the real geometry (8x8 start): far-away pixels lie outside most receptive fields
    g = OASISGenerator(OASISConfig(semantic_nc=5, crop_size=size, ch_G=1, z_dim=8, spade_hidden=8))
    label = _two_region_label(size)
    oh = on.label_one_hot(g, label)
    g = _bn_ready(g, oh)
    region = label[0] == 1
    z0 = on.base_noise(g, oh, seed=3)
    z_loc = on.local_resamples(z0, region, 2, seed=3)
    assert z_loc.shape == (2, 8, size, size)
    diff_z = (z_loc - z0).abs().sum(1)  # (2, H, W)
    assert diff_z[:, ~region].max() == 0 and diff_z[:, region].min() > 0
    assert not torch.equal(z_loc[0], z_loc[1])  # two different local resamples
    img0, img_l = on.decode(g, oh, z0), on.decode(g, oh, z_loc[:1])
    d = (img_l - img0).abs().mean(1)[0]
    assert d[:, : size // 4].mean() > 10 * d[:, 3 * size // 4:].mean()  # far pixels change much less
    # global resampling changes the whole image, and is reproducible from the seed
    z_g = on.global_resamples(g, oh, 2, seed=3)
    assert torch.equal(z_g, on.global_resamples(g, oh, 2, seed=3))
    img_g = on.decode(g, oh, z_g[:1])
    dg = (img_g - img0).abs().mean(1)[0]
    assert dg[:, 3 * size // 4:].mean() > 10 * d[:, 3 * size // 4:].mean()


def test_interpolation_ends_equal_the_endpoint_samples():
    torch.manual_seed(0)
    g = OASISGenerator(OASISConfig(**{**TINY, "crop_size": 64}))
    label = _two_region_label(64)
    oh = on.label_one_hot(g, label)
    g = _bn_ready(g, oh)
    z_a, z_b = on.global_resamples(g, oh, 2, seed=0).split(1)
    path = on.interpolate_global(z_a, z_b, 5)
    assert torch.equal(path[0], z_a[0]) and torch.equal(path[-1], z_b[0])
    assert torch.allclose(path[2], 0.5 * (z_a[0] + z_b[0]), atol=1e-6)  # linear
    imgs = on.decode(g, oh, path, batch=1)
    assert torch.equal(imgs[0], on.decode(g, oh, z_a, batch=1)[0])
    assert torch.equal(imgs[-1], on.decode(g, oh, z_b, batch=1)[0])
    assert not torch.equal(imgs[0], imgs[-1])
    region = label[0] == 1
    loc = on.interpolate_local(z_a, z_b, region, 5)
    assert torch.equal(loc[:, :, ~region], z_a[:, :, ~region].expand(5, -1, -1))  # outside: z_a, bit-exact
    assert torch.equal(loc[0], z_a[0])
    assert torch.equal(loc[-1][:, region], z_b[0][:, region])
    with pytest.raises(Exception):
        on.NoiseEditConfig(steps=1)


def test_pick_region():
    lab = torch.tensor([[0, 0, 2, 1], [2, 2, 0, 1]])
    assert on.pick_region(lab) == 2  # 0 = dontcare ignored
    assert on.pick_region(lab, 1) == 1
    with pytest.raises(ValueError, match="not present"):
        on.pick_region(lab, 5)


# --------------------------------------------------------------------------- D as segmenter
class FixedD(nn.Module):
    """A 'discriminator' with known logits (B, N+1, H, W)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1, -1, -1)


def test_segmenter_is_argmax_over_real_classes_with_hand_computed_miou():
    # N = 3 labels (0 = dontcare, 1, 2); channels: 0 fake, 1 -> label 0, 2 -> label 1, 3 -> label 2.
    lg = torch.zeros(1, 4, 2, 2)
    lg[0, :, 0, 0] = torch.tensor([9.0, 1.0, 3.0, 2.0])  # fake highest -> ignored -> label 1
    lg[0, :, 0, 1] = torch.tensor([0.0, 5.0, 1.0, 4.0])  # label 0 (dontcare) highest -> label 0 / 2 without it
    lg[0, :, 1, 0] = torch.tensor([0.0, 0.0, 0.0, 7.0])  # label 2
    lg[0, :, 1, 1] = torch.tensor([8.0, 0.0, 6.0, 1.0])  # label 1
    gt = torch.tensor([[[1, 2], [2, 2]]])
    seg = ds.DSegmenter(FixedD(lg), n_classes=3, first=0)
    assert torch.equal(seg.predict(torch.zeros(1, 3, 2, 2)), torch.tensor([[[1, 0], [2, 1]]]))
    res = ds.evaluate(seg, [(torch.zeros(1, 3, 2, 2), gt)], ignore_index=None)
    # label 0: TP 0, union 1 -> 0; label 1: TP 1, FP 1 -> 1/2; label 2: TP 1, FN 2 -> 1/3
    assert res["miou"] == pytest.approx((0 + 1 / 2 + 1 / 3) / 3)
    seg1 = ds.DSegmenter(FixedD(lg), n_classes=3, first=1)  # dontcare excluded (ADE20K protocol)
    assert torch.equal(seg1.predict(torch.zeros(1, 3, 2, 2)), torch.tensor([[[1, 2], [2, 1]]]))
    gt0 = torch.tensor([[[1, 0], [2, 2]]])  # the dontcare pixel is ignored
    res1 = ds.evaluate(seg1, [(torch.zeros(2, 3, 2, 2), gt0.expand(2, -1, -1))], ignore_index=0)
    # label 1: TP 2 (x2 images), FP 2 -> 1/2; label 2: TP 2, FN 2 -> 1/2
    assert res1["miou"] == pytest.approx(0.5) and res1["n_images"] == 2
    assert res1["per_class_iou"]["0"] is None


# --------------------------------------------------------------------------- tiny run + CLI
@pytest.fixture(scope="module")
def ade_root(ade_root_small):
    return ade_root_small


@pytest.fixture(scope="module")
def tiny_run(ade_root, tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("run")
    params = json.dumps({**TINY, "d_channels": list(TINY["d_channels"]), "iterations": 1, "checkpoint_every": 1,
                         "log_every": 1, "bn_refresh_batches": 1})
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(run), "--params", params,
                       "--device", "cpu"]) == 0
    return run


def _png_hw(path):
    with Image.open(path) as im:
        return im.size[1], im.size[0]


def test_d_weights_from_checkpoint_and_export(tiny_run, tmp_path):
    seg, gan, _, src = ds.load_segmenter(tiny_run)
    assert src.name == "checkpoint.pt" and seg.first == 1  # ADE-like layout: dontcare excluded
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    pred = seg.predict(x)
    assert pred.shape == (2, 32, 32) and int(pred.min()) >= 1 and int(pred.max()) < 7
    out = ds.export_discriminator(tiny_run)
    assert out.name == "discriminator.pt"
    seg2, _, _, src2 = ds.load_segmenter(tiny_run)
    assert src2 == out and torch.equal(seg2(x), seg(x))
    out.unlink()


def test_figure_commands_write_pngs_of_the_expected_size(tiny_run, ade_root, tmp_path):
    common = ["--run", str(tiny_run), "--dataroot", str(ade_root), "--device", "cpu"]
    assert fig_main(["noise", *common, "--out", str(tmp_path / "noise.png"), "--n-maps", "2",
                     "--n-samples", "3"]) == 0
    assert _png_hw(tmp_path / "noise.png") == mosaic_size(4, 4, (32, 32))
    side = json.loads((tmp_path / "noise.json").read_text())
    assert side["figure"] == "fig_4_10_noise_resampling" and len(side["maps"]) == 2
    assert all(m["region_class"] >= 1 for m in side["maps"]) and "provenance" in side
    assert fig_main(["interpolate", *common, "--out", str(tmp_path / "interp.png"), "--n-maps", "1",
                     "--steps", "4", "--scale", "2"]) == 0
    assert _png_hw(tmp_path / "interp.png") == mosaic_size(2, 5, (32, 32), 2)
    assert fig_main(["recreate", *common, "--out", str(tmp_path / "rec.png"), "--indices", "1"]) == 0
    assert _png_hw(tmp_path / "rec.png") == mosaic_size(1, 5, (32, 32))
    assert fig_main(["d-miou", *common, "--out", str(tmp_path / "dmiou.json")]) == 0
    res = json.loads((tmp_path / "dmiou.json").read_text())
    assert res["metric"] == "oasis_d_segmenter_miou" and res["details"]["n_images"] == 2
    assert res["value"] is None or 0.0 <= res["value"] <= 1.0
    assert res["details"]["per_class_iou"]["0"] is None  # dontcare never predicted nor scored
    # bad input is a named error, not a traceback
    assert fig_main(["noise", *common, "--out", str(tmp_path / "x.png"), "--region-class", "99"]) == 2
    assert fig_main(["noise", *common, "--out", str(tmp_path / "x.png"), "--indices", "7"]) == 2


def test_colour_texture_figure(tiny_run, ade_root, tmp_path):
    out = tmp_path / "fig47.png"
    assert fig_main(["colour-texture", "--run", f"OASIS={tiny_run}", "--run", f"again={tiny_run}",
                     "--dataroot", str(ade_root), "--out", str(out), "--device", "cpu",
                     "--params", '{"min_pixels": 20}', "--preset", "tiny"]) == 0
    assert out.is_file() and _png_hw(out)[0] > 100
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["params"]["preset"] == "tiny"  # the title carries the TINY-PRESET warning
    bars = side["bars"]
    assert [b["label"] for b in bars] == ["OASIS", "again"]
    assert all(np.isfinite(b["colour_emd"]) and b["colour_emd"] > 0 for b in bars)
    assert bars[0]["colour_emd"] == bars[1]["colour_emd"]  # the same run and seed -> the same images
    # the same numbers through the file route: oasis_cli sample + export, then seg_cli colour-texture (--result)
    from gan_core.metrics.seg_cli import main as seg_main

    cfg = json.loads((tiny_run / "config.json").read_text())
    params = json.dumps({**cfg["oasis"], **cfg["run"]})
    assert oasis_main(["sample", "--run", str(tiny_run), "--dataroot", str(ade_root), "--out", str(tmp_path / "s"),
                       "--device", "cpu"]) == 0
    assert oasis_main(["export", "--dataroot", str(ade_root), "--params", params, "--split", "validation",
                       "--out", str(tmp_path / "real")]) == 0
    assert seg_main(["colour-texture", "--fake", str(tmp_path / "s" / "images"), "--real",
                     str(tmp_path / "real" / "images"), "--labels", str(tmp_path / "real" / "labels"),
                     "--out", str(tmp_path / "ct.json"), "--params", '{"min_pixels": 20, "ignore_index": 0}']) == 0
    assert fig_main(["colour-texture", "--result", f"files={tmp_path / 'ct.json'}", "--out",
                     str(tmp_path / "f2.png")]) == 0
    bar = json.loads((tmp_path / "f2.json").read_text())["bars"][0]
    assert bar["colour_emd"] == pytest.approx(bars[0]["colour_emd"], rel=1e-9)
    assert bar["texture_chi2"] == pytest.approx(bars[0]["texture_chi2"], rel=1e-9)
    assert fig_main(["colour-texture", "--out", str(out)]) == 2  # nothing to plot
    assert fig_main(["colour-texture", "--run", "no-equals-sign", "--out", str(out)]) == 2
