"""External mIoU segmenters (UperNet101 / DRN-D-105 / DeepLabV2-MSC) and the evaluation harness.

Reference numbers are derived independently of our code: parameter counts from torchvision's
resnet101 plus hand counts of the parts that differ (and fyu/drn's README: DRN-D-105 54.8M), key
names and shapes as they appear in the official repositories' module definitions, and a hand-made
mIoU case.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from gan_core.errors import ConfigError, DataError
from gan_core.metrics import external_seg_cli
from gan_core.metrics.external_seg import (CITYSCAPES_LABELID_TO_TRAINID, ExternalSegConfig, evaluate_folders,
                                           map_labels, normalise, predict)
from gan_core.nets.segmenters import EvalProtocol, build_segmenter, get_spec, load_segmenter

NAMES = ("upernet101_ade20k", "drn_d105_cityscapes", "deeplabv2_cocostuff")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {n: build_segmenter(n) for n in NAMES}


@pytest.fixture(scope="module")
def tv_resnet101():
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.resnet101(weights=None)


# ------------------------------------------------------------------------------ architecture
@pytest.mark.parametrize("name,classes", [("upernet101_ade20k", 150), ("drn_d105_cityscapes", 19),
                                          ("deeplabv2_cocostuff", 182)])
def test_output_shape_at_input_resolution(nets, name, classes):
    with torch.no_grad():
        y = nets[name](torch.randn(2, 3, 64, 96))
    assert y.shape == (2, classes, 64, 96)
    assert torch.isfinite(y).all()


def test_parameter_counts(nets, tv_resnet101):
    tv = tv_resnet101
    fc = 2048 * 1000 + 1000
    tv_total = n_params(tv)
    # UperNet encoder: torchvision R101 without fc; 7x7 stem conv replaced by 3x3 convs 3->64, 64->64,
    # 64->128 with two more BNs (64, 128 channels); layer1's input is 128 wide instead of 64 (block 0's
    # conv1 and downsample conv).
    enc = tv_total - fc - 3 * 64 * 49 + (3 * 64 * 9 + 64 * 64 * 9 + 64 * 128 * 9) + 2 * 64 + 2 * 128 \
        + (128 - 64) * 64 + (128 - 64) * 256
    # UPerNet head, hand count: PPM 4 x (1x1 2048->512 + BN), ppm_last_conv 3x3 (2048+4*512)->512 + BN,
    # fpn_in 1x1 {256,512,1024}->512 + BN, fpn_out 3 x 3x3 512->512 + BN, conv_last 3x3 2048->512 + BN, 1x1 512->150.
    dec = 4 * (2048 * 512 + 2 * 512) + (4096 * 512 * 9 + 2 * 512) + ((256 + 512 + 1024) * 512 + 3 * 2 * 512) \
        + 3 * (512 * 512 * 9 + 2 * 512) + (2048 * 512 * 9 + 2 * 512) + (512 * 150 + 150)
    up = nets["upernet101_ade20k"]
    assert n_params(up.encoder) == enc
    assert n_params(up.decoder) == dec
    # DRN-D-105: torchvision layer1..4 = DRN layer3..6 (dilation adds no weights) but layer3's input is
    # 32 wide (not 64); plus the conv layers 0,1,2,7,8, the 1x1 seg conv and the 19 x 16x16 `up` kernel.
    tv_layers = sum(n_params(getattr(tv, f"layer{i}")) for i in range(1, 5))
    drn = tv_layers - (64 - 32) * 64 - (64 - 32) * 256 \
        + (3 * 16 * 49 + 32) + (16 * 16 * 9 + 32) + (16 * 32 * 9 + 64) + (2048 * 512 * 9 + 1024) \
        + (512 * 512 * 9 + 1024) + (512 * 19 + 19) + 19 * 16 * 16
    d = nets["drn_d105_cityscapes"]
    assert n_params(d) == drn
    # fyu/drn README: "DRN-D-105 ... 54.8M" parameters (the DRN with its 1000-way 1x1 fc classifier).
    assert round((n_params(d.base) + 512 * 1000 + 1000) / 1e6, 1) == 54.8
    # DeepLabV2: same ResNet-101 shapes as torchvision (7x7 stem, projections in every first block),
    # no fc; ASPP = 4 dilated 3x3 convs 2048->182 with bias.
    assert n_params(nets["deeplabv2_cocostuff"]) == tv_total - fc + 4 * (2048 * 182 * 9 + 182)


def test_bottleneck_matches_torchvision(nets, tv_resnet101):
    """Our torchvision-layout Bottleneck (UperNet encoder / DRN) computes what torchvision's does."""
    ours = copy.deepcopy(nets["upernet101_ade20k"].encoder.layer4)
    tv_layer = tv_resnet101.layer4.eval()
    ours.load_state_dict(tv_layer.state_dict(), strict=True)  # same key names by construction
    x = torch.randn(1, 1024, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv_layer(x), atol=1e-5)


# Keys (and shapes) as the official module definitions name them.
OFFICIAL_KEYS = {
    "upernet101_ade20k": {
        "encoder": {"conv1.weight": (64, 3, 3, 3), "bn3.running_var": (128,), "conv3.weight": (128, 64, 3, 3),
                    "layer1.0.conv1.weight": (64, 128, 1, 1), "layer1.0.downsample.0.weight": (256, 128, 1, 1),
                    "layer1.0.downsample.1.running_mean": (256,), "layer2.0.conv2.weight": (128, 128, 3, 3),
                    "layer3.22.bn3.weight": (1024,), "layer4.2.bn3.running_var": (2048,)},
        "decoder": {"ppm_conv.0.0.weight": (512, 2048, 1, 1), "ppm_conv.3.1.running_mean": (512,),
                    "ppm_last_conv.0.weight": (512, 4096, 3, 3), "ppm_last_conv.1.bias": (512,),
                    "fpn_in.0.0.weight": (512, 256, 1, 1), "fpn_in.2.0.weight": (512, 1024, 1, 1),
                    "fpn_out.0.0.1.running_var": (512,), "fpn_out.2.0.0.weight": (512, 512, 3, 3),
                    "conv_last.0.0.weight": (512, 2048, 3, 3), "conv_last.0.1.weight": (512,),
                    "conv_last.1.weight": (150, 512, 1, 1), "conv_last.1.bias": (150,)},
    },
    "drn_d105_cityscapes": {"": {
        "base.0.0.weight": (16, 3, 7, 7), "base.0.1.running_mean": (16,), "base.1.0.weight": (16, 16, 3, 3),
        "base.2.0.weight": (32, 16, 3, 3), "base.3.0.conv1.weight": (64, 32, 1, 1),
        "base.3.0.downsample.0.weight": (256, 32, 1, 1), "base.5.22.conv2.weight": (256, 256, 3, 3),
        "base.6.2.bn3.running_var": (2048,), "base.7.0.weight": (512, 2048, 3, 3), "base.8.1.running_var": (512,),
        "seg.weight": (19, 512, 1, 1), "seg.bias": (19,), "up.weight": (19, 1, 16, 16)}},
    "deeplabv2_cocostuff": {"": {
        "base.layer1.conv1.conv.weight": (64, 3, 7, 7), "base.layer1.conv1.bn.running_mean": (64,),
        "base.layer2.block1.shortcut.conv.weight": (256, 64, 1, 1), "base.layer2.block1.reduce.conv.weight": (64, 64, 1, 1),
        "base.layer3.block1.reduce.conv.weight": (128, 256, 1, 1), "base.layer4.block23.increase.bn.running_var": (1024,),
        "base.layer5.block3.conv3x3.conv.weight": (512, 512, 3, 3), "base.aspp.c0.weight": (182, 2048, 3, 3),
        "base.aspp.c3.bias": (182,)}},
}
ABSENT_KEYS = {"drn_d105_cityscapes": ["fc.weight", "base.9.weight"],
               "deeplabv2_cocostuff": ["base.layer2.block2.shortcut.conv.weight", "base.aspp.c4.weight"],
               "upernet101_ade20k": ["encoder.fc.weight", "decoder.conv_last.2.weight"]}


@pytest.fixture(scope="module")
def saved(nets, tmp_path_factory):
    """Each network's state dict(s) saved to disk, one file per official weight file."""
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name in NAMES:
        files = []
        for part, fname in zip(get_spec(name).parts, get_spec(name).files):
            module = nets[name].get_submodule(part) if part else nets[name]
            torch.save(module.state_dict(), root / fname)
            files.append(root / fname)
        out[name] = files
    return out


@pytest.mark.parametrize("name", NAMES)
def test_official_key_layout_and_strict_round_trip(nets, saved, name):
    for part, keys in OFFICIAL_KEYS[name].items():
        sd = (nets[name].get_submodule(part) if part else nets[name]).state_dict()
        for key, shape in keys.items():
            assert key in sd, key
            assert tuple(sd[key].shape) == shape, key
    full = nets[name].state_dict()
    for key in ABSENT_KEYS[name]:
        assert key not in full
    torch.manual_seed(123)  # a different initialisation, then overwritten by the load
    loaded = load_segmenter(name, saved[name])
    assert not loaded.training
    for key, value in full.items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_drn_up_is_fixed_bilinear(nets):
    up = nets["drn_d105_cityscapes"].up.weight
    assert not up.requires_grad
    # 16x16 bilinear kernel, factor 8, centre 7.5: taps 1 - |i - 7.5| / 8 -> 0.0625 at i=0, 0.9375 at i=7,8.
    assert up[3, 0, 7, 8].item() == pytest.approx(0.9375 ** 2)
    assert up[0, 0, 0, 15].item() == pytest.approx(0.0625 ** 2)
    assert torch.equal(up[0], up[18])


def test_compat_prefix_and_bn_counter(nets, tmp_path):
    sd = {f"module.{k}": v for k, v in nets["drn_d105_cityscapes"].state_dict().items()
          if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old_style.pth"
    torch.save(sd, path)
    m = load_segmenter("drn_d105_cityscapes", [path])
    assert torch.equal(m.seg.weight, nets["drn_d105_cityscapes"].seg.weight)


def test_bad_checkpoints_name_the_file(tmp_path):
    partial = tmp_path / "partial.pth"
    torch.save({"seg.weight": torch.zeros(7, 512, 1, 1), "foo.bar": torch.zeros(1)}, partial)
    with pytest.raises(DataError) as exc:
        load_segmenter("drn_d105_cityscapes", [partial])
    msg = str(exc.value)
    assert "partial.pth" in msg and "missing keys" in msg and "base.0.0.weight" in msg
    assert "unexpected keys: foo.bar" in msg and "shape mismatches: seg.weight (7, 512, 1, 1)" in msg

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(DataError, match="garbage.pth"):
        load_segmenter("deeplabv2_cocostuff", [garbage])

    not_sd = tmp_path / "not_sd.pth"
    torch.save({"epoch": 3, "name": "x"}, not_sd)
    with pytest.raises(DataError, match="not_sd.pth.*state dict"):
        load_segmenter("deeplabv2_cocostuff", [not_sd])

    with pytest.raises(DataError, match="missing.pth.*does not exist"):
        load_segmenter("deeplabv2_cocostuff", [tmp_path / "missing.pth"])
    with pytest.raises(ConfigError, match="2 weight file"):
        load_segmenter("upernet101_ade20k", [partial])
    with pytest.raises(ConfigError, match="unknown segmenter"):
        build_segmenter("pspnet")


# ------------------------------------------------------------------------------ label mapping
def test_cityscapes_label_ids_to_train_ids():
    raw = torch.tensor([7, 26, 0, 33, 24, 23, 9, 31, 1])
    assert map_labels(raw, "cityscapes").tolist() == [0, 13, 255, 18, 11, 10, 255, 16, 255]
    train_ids = sorted(v for v in CITYSCAPES_LABELID_TO_TRAINID.values() if v != 255)
    assert train_ids == list(range(19))  # every train id exactly once
    with pytest.raises(DataError, match="gt.png.*34"):
        map_labels(torch.tensor([7, 34]), "cityscapes", "gt.png")


def test_ade20k_and_cocostuff_label_conventions():
    assert map_labels(torch.tensor([0, 1, 150]), "ade20k").tolist() == [255, 0, 149]
    with pytest.raises(DataError, match="151"):
        map_labels(torch.tensor([151]), "ade20k", "a.png")
    assert map_labels(torch.tensor([0, 181, 255]), "cocostuff").tolist() == [0, 181, 255]
    with pytest.raises(DataError, match="c.png.*182"):
        map_labels(torch.tensor([182]), "cocostuff", "c.png")


def test_normalisation_per_segmenter():
    px = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)
    dl = normalise(px, get_spec("deeplabv2_cocostuff").protocol).flatten().tolist()
    assert dl == pytest.approx([30 - 104.008, 20 - 116.669, 10 - 122.675])  # BGR minus the Caffe mean
    up = normalise(px, get_spec("upernet101_ade20k").protocol).flatten().tolist()
    assert up == pytest.approx([(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225])
    assert get_spec("drn_d105_cityscapes").protocol.scales == (1.0, 0.5, 0.75, 1.25, 1.5, 1.75)


# ------------------------------------------------------------------------------ harness
IDENTITY3 = EvalProtocol(dataset="cocostuff", num_classes=3, mean=(0.0, 0.0, 0.0), scale=1.0)


class RedThreshold(nn.Module):
    """Fake segmenter: class = red value // 100 (inputs 0, 100, 200 -> classes 0, 1, 2)."""

    def forward(self, x):
        cls = (x[:, 0] // 100).long().clamp(0, 2)
        return torch.nn.functional.one_hot(cls, 3).permute(0, 3, 1, 2).float() * 10.0


def _write_case(root):
    (root / "img").mkdir()
    (root / "lab").mkdir()
    a = np.zeros((4, 4, 3), np.uint8)
    a[:, 2:, 0] = 100                                 # prediction: cols 0-1 -> 0, cols 2-3 -> 1
    lab_a = np.zeros((4, 4), np.uint8)
    lab_a[:, 2], lab_a[:, 3] = 1, 2                   # truth: col 2 -> 1, col 3 -> 2
    b = np.full((4, 4, 3), 0, np.uint8)
    b[..., 0] = 200                                   # prediction: all 2
    lab_b = np.full((4, 4), 2, np.uint8)
    lab_b[0] = 255                                    # ignored row
    lab_b[3, 3] = 0
    lab_b = lab_b.repeat(2, 0).repeat(2, 1)           # stored at 8x8: nearest-resized back to 4x4
    for stem, img, lab in (("a", a, lab_a), ("b", b, lab_b)):
        Image.fromarray(img).save(root / "img" / f"{stem}.png")
        Image.fromarray(lab).save(root / "lab" / f"{stem}.png")


@pytest.mark.parametrize("batch_size", [1, 2])
def test_harness_hand_computed_miou(tmp_path, batch_size):
    _write_case(tmp_path)
    res = evaluate_folders(RedThreshold(), IDENTITY3, tmp_path / "img", tmp_path / "lab",
                           ExternalSegConfig(batch_size=batch_size))
    # confusion (rows truth, cols prediction): a: 0->0 x8, 1->1 x4, 2->1 x4; b: 2->2 x11, 0->2 x1, 4 ignored
    assert res["confusion_matrix"] == [[8, 0, 1], [0, 4, 0], [0, 4, 11]]
    assert res["miou"] == pytest.approx((8 / 9 + 4 / 8 + 11 / 16) / 3)
    assert res["pixel_accuracy"] == pytest.approx(23 / 28)
    assert res["n_images"] == 2


def test_harness_missing_image_names_file(tmp_path):
    _write_case(tmp_path)
    (tmp_path / "img" / "b.png").unlink()
    with pytest.raises(DataError, match="b.png.*does not exist"):
        evaluate_folders(RedThreshold(), IDENTITY3, tmp_path / "img", tmp_path / "lab")


class SizeDependent(nn.Module):
    """Full-size input: class 0 by a small margin; half-size input: class 1 by a large margin."""

    def __init__(self, full):
        super().__init__()
        self.full = full

    def forward(self, x):
        b, _, h, w = x.shape
        v = torch.tensor([0.1, 0.0]) if h == self.full else torch.tensor([0.0, 5.0])
        return v.view(1, 2, 1, 1).expand(b, 2, h, w)


def test_multiscale_fusion_sums_log_softmax():
    p = EvalProtocol(dataset="cocostuff", num_classes=2, mean=(0.0, 0.0, 0.0), scale=1.0,
                     scales=(1.0, 0.5), fusion="sum_log_softmax", rescale_mode="bicubic", quantize_rescaled=True)
    x = torch.full((1, 3, 8, 8), 50.0)
    assert predict(SizeDependent(8), x, p).unique().tolist() == [1]
    assert predict(SizeDependent(8), x, p, scales=(1.0,)).unique().tolist() == [0]


def test_cli_random_init_records_it(tmp_path):
    _write_case(tmp_path)
    out = tmp_path / "res.json"
    assert external_seg_cli.main(["--segmenter", "deeplabv2_cocostuff", "--random-init", "--seed", "3",
                                  "--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"),
                                  "--out", str(out), "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    assert res["metric"] == "miou" and res["segmenter"] == "deeplabv2_cocostuff"
    assert res["note"] == "random-init: not the thesis' segmenter" and res["details"]["random_init"] is True
    assert 0.0 <= res["miou_percent"] <= 100.0 and 0.0 <= res["pixel_accuracy"] <= 1.0
    assert len(res["per_class_iou"]) == 182 and res["provenance"]["seed"] == 3
    with pytest.raises(ConfigError, match="--weights is required"):
        external_seg_cli.main(["--segmenter", "deeplabv2_cocostuff", "--images", str(tmp_path / "img"),
                               "--labels", str(tmp_path / "lab"), "--out", str(out)])


def test_cli_frequency_groups_and_oasis_coco_convention(tmp_path):
    """--label-convention cocostuff_oasis reads the exported (shifted) COCO-Stuff maps: 0 ignored, k -> k-1;
    --groups ranks classes by their pixel count in --freq-labels (hand-made maps)."""
    from gan_core.metrics.external_seg import class_frequencies, label_lut
    from gan_core.metrics.external_seg_cli import main as ext_main

    lut = label_lut("cocostuff_oasis")
    assert int(lut[0]) == 255 and int(lut[1]) == 0 and int(lut[182]) == 181 and int(lut[183]) == -1
    train = tmp_path / "train"
    train.mkdir()
    lab = np.zeros((4, 4), np.uint8)
    lab[:, :3] = 3   # class 2: 12 pixels
    lab[:, 3] = 6    # class 5: 4 pixels (0 = ignored)
    Image.fromarray(lab).save(train / "a.png")
    freq = class_frequencies(train, "cocostuff_oasis", 182)
    assert freq[2] == 12 and freq[5] == 4 and freq.sum() == 16
    images, labels = tmp_path / "img", tmp_path / "lab"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(images / "a.png")
    Image.fromarray(np.kron(lab, np.ones((4, 4), np.uint8))).save(labels / "a.png")
    out = tmp_path / "res.json"
    assert ext_main(["--segmenter", "deeplabv2_cocostuff", "--random-init", "--images", str(images),
                     "--labels", str(labels), "--out", str(out), "--device", "cpu",
                     "--label-convention", "cocostuff_oasis", "--groups", "0-0,1-1", "--freq-labels", str(train)]) == 0
    res = json.loads(out.read_text())
    groups = res["frequency_groups"]["groups"]
    assert groups[0]["classes"] == [2] and groups[1]["classes"] == [5]
    assert groups[0]["pixel_fraction"] == pytest.approx(0.75)
