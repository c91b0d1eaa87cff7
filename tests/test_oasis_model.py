"""OASIS networks, losses and checkpoint loading against the reference notes (§1.2-§1.8) and thesis
Eq. 4.2-4.5. The full-size networks are built on the meta device (no memory, no compute)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_core.errors import ConfigError, DataError, MissingResourceError
from gan_core.losses.oasis import (class_balance_weights, discriminator_loss, generator_loss, labelmix,
                                   labelmix_consistency, labelmix_mask, n_plus_one_loss, n_plus_one_target)
from gan_core.nets.oasis import (OASISDiscriminator, OASISGenerator, count_parameters, init_oasis_weights,
                                 resample_region, sample_noise)
from gan_core.nets.oasis_checkpoint import load_oasis_state
from gan_core.nets.oasis_config import OASISConfig
from gan_core.utils.atomic import torch_save


def _meta(cfg):
    with torch.device("meta"):
        return OASISGenerator(cfg), OASISDiscriminator(cfg)


# --- reference notes §1.2 / §1.3 parameter counts [CPU-check] ---------------------------------
@pytest.mark.parametrize("kw, g_m, d_m", [
    ({}, 74.31, 22.26),                        # ADE20K, 3D noise
    ({"no_3dnoise": True}, 72.55, 22.26),      # ADE20K, no 3D noise (thesis l.1298: "72M")
    ({"dataset": "cityscapes"}, 71.11, None),
    ({"dataset": "coco"}, 75.20, None),
])
def test_parameter_counts_match_reference(kw, g_m, d_m):
    g, d = _meta(OASISConfig(**kw))
    assert abs(count_parameters(g) / 1e6 - g_m) <= 0.01
    if d_m is not None:
        assert abs(count_parameters(d) / 1e6 - d_m) <= 0.01


def test_official_state_dict_layout():
    cfg = OASISConfig()  # ADE20K: 151 semantic channels + 64 noise channels = 215
    g, d = _meta(cfg)
    gs = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    expect_g = {
        "fc.weight": (1024, 215, 3, 3), "fc.bias": (1024,),
        "body.0.conv_0.weight_orig": (1024, 1024, 3, 3), "body.0.conv_0.weight_u": (1024,),
        "body.0.conv_0.weight_v": (9216,), "body.0.conv_0.bias": (1024,),
        "body.0.norm_0.first_norm.running_mean": (1024,), "body.0.norm_0.first_norm.running_var": (1024,),
        "body.0.norm_0.first_norm.num_batches_tracked": (),
        "body.0.norm_0.mlp_shared.0.weight": (128, 215, 3, 3), "body.0.norm_0.mlp_gamma.weight": (1024, 128, 3, 3),
        "body.0.norm_0.mlp_beta.bias": (1024,),
        "body.2.conv_s.weight_orig": (512, 1024, 1, 1), "body.2.norm_s.mlp_shared.0.weight": (128, 215, 3, 3),
        "body.5.conv_1.weight_orig": (64, 64, 3, 3), "conv_img.weight": (3, 64, 3, 3),
    }
    for k, shape in expect_g.items():
        assert gs.get(k) == shape, k
    # 1024->1024 blocks have no shortcut conv; conv_s has no bias; no SN on fc / conv_img / SPADE
    assert not any(k.startswith(("body.0.conv_s", "body.1.conv_s", "body.0.norm_s")) for k in gs)
    assert "body.2.conv_s.bias" not in gs and "fc.weight_orig" not in gs and "conv_img.weight_orig" not in gs
    assert not any("mlp" in k and "weight_orig" in k for k in gs)
    assert {k.split(".")[0] for k in gs} == {"fc", "body", "conv_img"}
    ds = {k: tuple(v.shape) for k, v in d.state_dict().items()}
    expect_d = {
        "body_down.0.conv1.0.weight_orig": (128, 3, 3, 3), "body_down.0.conv_s.weight_orig": (128, 3, 1, 1),
        "body_down.1.conv1.1.weight_orig": (128, 128, 3, 3), "body_down.2.conv_s.bias": (256,),
        "body_down.5.conv2.1.weight_orig": (512, 512, 3, 3),
        "body_up.0.conv1.2.weight_orig": (512, 512, 3, 3), "body_up.1.conv1.2.weight_orig": (256, 1024, 3, 3),
        "body_up.5.conv1.2.weight_orig": (64, 256, 3, 3), "layer_up_last.weight": (152, 64, 1, 1),
        "layer_up_last.bias": (152,),
    }
    for k, shape in expect_d.items():
        assert ds.get(k) == shape, k
    assert not any(k.startswith("body_down.1.conv_s") for k in ds)  # 128 -> 128: identity shortcut


def _small_cfg(**kw):
    base = dict(semantic_nc=5, crop_size=64, ch_G=2, z_dim=8, spade_hidden=8,
                d_channels=(4, 4, 8, 8, 16, 16), d_last_channels=4)
    base.update(kw)
    return OASISConfig(**base)


def _two_region_label(b=2, n=5, size=64):
    idx = torch.full((b, size, size), 1, dtype=torch.long)
    idx[:, :, size // 2:] = 2
    idx[:, : size // 4, size // 2:] = 3
    return F.one_hot(idx, n).permute(0, 3, 1, 2).float(), idx


def test_state_dict_roundtrip_through_loader(tmp_path):
    torch.manual_seed(0)
    cfg = _small_cfg()
    for cls in (OASISGenerator, OASISDiscriminator):
        src, dst = cls(cfg), cls(cfg)
        init_oasis_weights(src)
        path = tmp_path / f"{cls.__name__}.pth"
        torch_save({"module." + k: v for k, v in src.state_dict().items()}, path)  # DataParallel-style
        load_oasis_state(path, dst)
        for k, v in src.state_dict().items():
            assert torch.equal(v, dst.state_dict()[k]), k
    # wrong layout (no 3D noise) -> DataError naming the file
    torch_save(OASISGenerator(_small_cfg(no_3dnoise=True)).state_dict(), tmp_path / "G.pth")
    with pytest.raises(DataError, match="G.pth.*shape mismatch"):
        load_oasis_state(tmp_path / "G.pth", OASISGenerator(cfg))
    torch_save({"fc.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth"):
        load_oasis_state(tmp_path / "bad.pth", OASISGenerator(cfg))
    with pytest.raises(MissingResourceError):
        load_oasis_state(tmp_path / "absent.pth", OASISGenerator(cfg))


def test_spectral_norm_is_converged_after_init():
    """blocks.refresh_spectral_norm: the eval-mode SN weight has largest singular value 1 (checked against
    torch.linalg.matrix_norm), so an untrained network is well scaled without a training forward."""
    d = OASISDiscriminator(_small_cfg()).eval()
    conv = d.body_down[2].conv1[1]
    with torch.no_grad():
        d(torch.randn(1, 3, 64, 64))  # eval forward recomputes ``weight`` from the stored u, v
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(sigma.item() - 1.0) < 1e-2


def test_discriminator_outputs_n_plus_one_at_input_resolution():
    cfg = _small_cfg()
    d = OASISDiscriminator(cfg)
    out = d(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, cfg.semantic_nc + 1, 64, 64)


def test_generator_shapes_and_noise_sensitivity():
    torch.manual_seed(0)
    cfg = _small_cfg()
    g = OASISGenerator(cfg).eval()
    label, _ = _two_region_label()
    with torch.no_grad():
        z1, z2 = torch.randn(2, cfg.z_dim), torch.randn(2, cfg.z_dim)
        a, b, a2 = g(label, z=z1), g(label, z=z2), g(label, z=z1)
    assert a.shape == (2, 3, 64, 64) and a.abs().max() <= 1
    assert torch.allclose(a, a2)
    assert (a - b).abs().mean() > 0.1 * a.abs().mean() > 0  # relative: the official init gives small outputs
    # no 3D noise: deterministic given the label
    g0 = OASISGenerator(_small_cfg(no_3dnoise=True)).eval()
    with torch.no_grad():
        assert torch.allclose(g0(label), g0(label))
    cs = OASISConfig(dataset="cityscapes", ch_G=1, spade_hidden=4, z_dim=4)
    assert cs.init_size == (8, 16) and cs.output_size == (256, 512)  # reference notes §1.2


def test_noise_modes():
    torch.manual_seed(0)
    label, idx = _two_region_label()
    z = sample_noise(label, 8, "image")
    assert torch.equal(z, z[:, :, :1, :1].expand_as(z))
    z = sample_noise(label, 8, "pixel")
    assert (z[:, :, 0, 0] - z[:, :, 0, 1]).abs().sum() > 0
    z = sample_noise(label, 8, "region")
    for c in (1, 2, 3):
        sel = z.permute(0, 2, 3, 1)[idx == c].view(-1, 8)  # b=0 then b=1 rows
        per_img = sel.view(2, -1, 8)
        assert torch.allclose(per_img, per_img[:, :1].expand_as(per_img))
    assert not torch.allclose(z[0, :, 40, 0], z[0, :, 40, 63])  # class 1 vs class 2
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    mask[:, :, :16] = True
    z = sample_noise(label, 8, "mixed", region_mask=mask)
    assert torch.equal(z[:, :, :, :16], z[:, :, :1, :1].expand(2, 8, 64, 16))
    assert not torch.allclose(z[:, :, 0, 0], z[:, :, 0, 63])
    with pytest.raises(ValueError):
        sample_noise(label, 8, "mixed")
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(sample_noise(label, 8, "region", generator=g1), sample_noise(label, 8, "region", generator=g2))


def test_region_resampling_is_local():
    """Noise changes only inside the region; at the real geometry (256 px, 8x8 start) the output far from
    the region changes much less than inside (convolutions make it only approximately local)."""
    torch.manual_seed(1)
    cfg = OASISConfig(semantic_nc=5, crop_size=256, ch_G=1, z_dim=8, spade_hidden=8)
    g = OASISGenerator(cfg)
    label, _ = _two_region_label(b=1, size=256)
    for m in g.modules():  # collect BN statistics first (the official code does so before evaluating)
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        g(label.expand(4, -1, -1, -1))
    g.eval()
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., :, :64] = 1
    with torch.no_grad():
        img, z = g(label, return_noise=True)
        z_new = resample_region(z, mask, "image")
        img_new = g(label, z=z_new)
    changed = (z_new - z).abs().sum(1)[0]
    assert changed[:, 64:].max() == 0 and changed[:, :64].min() > 0  # noise changes only inside the region
    diff = (img_new - img).abs().mean(1)[0]
    assert diff[:, :64].mean() > 10 * diff[:, 192:].mean()  # far-away pixels change much less
    z_pix = resample_region(z, mask, "pixel")
    assert torch.equal(z_pix[..., 64:], z[..., 64:])
    assert (z_pix[0, :, 0, 0] - z_pix[0, :, 0, 1]).abs().sum() > 0


# --- losses ------------------------------------------------------------------------------------
def test_class_balancing_hand_case():
    idx = torch.tensor([[[0, 1], [3, 3]]])  # reference notes §1.4 CPU-check
    w = class_balance_weights(idx, 4, contain_dontcare=True, mode="official")
    assert torch.allclose(w, torch.tensor([[[0.0, 2.0], [1.0, 1.0]]]))
    w = class_balance_weights(idx, 4, contain_dontcare=True)  # default = thesis Eq. 4.3: BHW / count
    assert torch.allclose(w, torch.tensor([[[0.0, 4.0], [2.0, 2.0]]]))
    w = class_balance_weights(idx, 4, contain_dontcare=False, mode="official")  # 3 present: 4/(3*1), 4/(3*2)
    assert torch.allclose(w, torch.tensor([[[4 / 3, 4 / 3], [2 / 3, 2 / 3]]]))
    onehot = F.one_hot(idx, 4).permute(0, 3, 1, 2).float()
    assert torch.equal(class_balance_weights(onehot, 4), class_balance_weights(idx, 4))


def test_default_discriminator_loss_is_thesis_eq_4_2_with_eq_4_3_weights():
    """Eq. 4.2 written out with its pixel sums and Eq. 4.3's alpha_c = HW / sum_ij E_t[1[t_ijc = 1]]
    (expectation over the batch), divided by H*W; no dontcare label here."""
    torch.manual_seed(1)
    b, n, h, w = 2, 3, 3, 4
    idx = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]],
                        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]]])
    d_real, d_fake = torch.randn(b, n + 1, h, w), torch.randn(b, n + 1, h, w)
    lr, lf = torch.log_softmax(d_real, 1), torch.log_softmax(d_fake, 1)
    real_term = 0.0
    for c in range(n):
        expected_count = sum((idx[k] == c).sum().item() for k in range(b)) / b  # sum_ij E_t[1[t_ijc = 1]]
        alpha = h * w / expected_count
        real_term += sum(alpha * lr[k, c + 1][idx[k] == c].sum() for k in range(b)) / b  # E_(x,t) (channel c+1)
    fake_term = sum(lf[k, 0].sum() for k in range(b)) / b  # fake class = channel 0
    literal = -(real_term + fake_term) / (h * w)
    got = discriminator_loss(d_real, d_fake, idx, contain_dontcare=False)
    assert torch.allclose(got, literal, rtol=1e-5)
    official = discriminator_loss(d_real, d_fake, idx, contain_dontcare=False, balancing="official")
    assert not torch.allclose(official, literal, rtol=1e-3)  # the released code's normalisation differs


def test_n_plus_one_targets_and_loss():
    idx = torch.tensor([[[0, 1], [3, 3]]])
    assert torch.equal(n_plus_one_target(idx, True), torch.tensor([[[1, 2], [4, 4]]]))
    assert torch.equal(n_plus_one_target(idx, False), torch.zeros(1, 2, 2, dtype=torch.long))
    zero = torch.zeros(1, 5, 2, 2)  # uniform softmax: CE = log(5) everywhere
    assert math.isclose(n_plus_one_loss(zero, idx, False).item(), math.log(5), rel_tol=1e-6)
    assert math.isclose(n_plus_one_loss(zero, idx, True, balancing="official").item(),
                        (0 + 2 + 1 + 1) / 4 * math.log(5), rel_tol=1e-6)
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 2, 2, requires_grad=True)
    logp = torch.log_softmax(logits, 1)[0]
    manual = -(2.0 * logp[2, 0, 1] + logp[4, 1, 0] + logp[4, 1, 1]) / 4  # official; dontcare pixel weight 0
    assert torch.allclose(generator_loss(logits, idx, balancing="official"), manual)
    assert torch.allclose(generator_loss(logits, idx), 2 * manual)  # Eq. 4.3: x n_present (2 classes)
    fake = -logp[0].mean()
    assert torch.allclose(discriminator_loss(logits, logits, idx, balancing="official"), manual + fake)
    generator_loss(logits, idx).backward()
    assert logits.grad[0, :, 0, 0].abs().sum() == 0  # dontcare pixel has no gradient


def test_labelmix_mask_and_consistency():
    torch.manual_seed(0)
    label, idx = _two_region_label(b=3)
    seen = set()
    for _ in range(12):
        m = labelmix_mask(label)
        assert m.shape == (3, 1, 64, 64) and set(m.unique().tolist()) <= {0.0, 1.0}
        for c in (1, 2, 3):  # constant on each class, and (official) the same bit in every image
            vals = m[:, 0][idx == c]
            assert vals.min() == vals.max()
        seen.add(tuple(m[0, 0, [0, 0, 40], [0, 63, 63]].tolist()))
    assert len(seen) > 1
    mi = labelmix_mask(label, per_image=True)
    assert set(mi.unique().tolist()) <= {0.0, 1.0}
    real, fake = torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64)
    m = labelmix_mask(label)
    mixed = labelmix(real, fake, m)
    assert torch.equal(mixed, torch.where(m.bool(), real, fake))
    # a per-pixel (1x1 conv) D commutes with LabelMix: Eq. 4.4 is exactly 0; a spatial D does not
    lin = nn.Conv2d(3, 6, 1)
    assert labelmix_consistency(lin(mixed), lin(real), lin(fake), m).item() < 1e-10
    sp = nn.Conv2d(3, 6, 5, padding=2)
    m = (idx == 1).float().unsqueeze(1)
    mixed = labelmix(real, fake, m)
    assert labelmix_consistency(lin(mixed), lin(real), lin(fake), m).item() < 1e-10
    assert labelmix_consistency(sp(mixed), sp(real), sp(fake), m).item() > 1e-4


# --- config ------------------------------------------------------------------------------------
def test_config_presets_and_validation():
    c = OASISConfig()
    assert (c.semantic_nc, c.crop_size, c.lambda_labelmix, c.ema_decay, c.batch_size) == (151, 256, 5.0, 0.9999, 32)
    assert (c.lr_g, c.lr_d, c.betas, c.z_dim, c.ch_G) == (1e-4, 4e-4, (0.0, 0.999), 64, 64)
    assert OASISConfig(preset_source="official").lambda_labelmix == 10.0
    cs = OASISConfig(dataset="cityscapes", preset_source="official")
    assert (cs.lr_g, cs.ema_decay, cs.batch_size, cs.semantic_nc) == (4e-4, 0.999, 20, 35)
    assert OASISConfig(dataset="coco").lambda_labelmix == 10.0
    assert OASISConfig(lambda_labelmix=7).lambda_labelmix == 7
    assert OASISConfig.from_dict(OASISConfig(dataset="coco").to_dict()) == OASISConfig(dataset="coco")
    with pytest.raises(ConfigError):
        OASISConfig.from_dict({"lambda_lm": 3})
    with pytest.raises(ConfigError):
        OASISConfig(dataset="lvis")  # semantic_nc must be given
    with pytest.raises(ConfigError):
        OASISConfig(class_balancing="inverse")
