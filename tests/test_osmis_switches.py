"""Every ablation switch of thesis Tables 5.3-5.6 and 6.3-6.4 is a config key that changes the model.

One test per switch: parameter counts, output shapes, or the presence of a loss term / gradient path.
Defaults must keep the reference-notes parameter counts at 256x256 (§2.3).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core.errors import ConfigError
from gan_core.losses.osmis import adversarial_losses, diversity_distance, ds_distance, zcr_distance
from gan_core.nets.osmis import (OSMISDiscriminator, OSMISGenerator, auto_architecture, count_parameters,
                                 masked_content_attention)
from gan_core.nets.osmis_config import OSMISConfig
from gan_core.train.osmis_trainer import OSMISTrainer

TINY = dict(ch_G=4, ch_D=4, batch_size=2)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared CPU: one intra-op thread avoids oversubscription (100x slower otherwise)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

K = 3  # mask channels in the small tests


def _onehot(b: int, h: int, w: int, k: int = K, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, k, (b, h // 8, w // 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    return F.one_hot(lab, k).permute(0, 3, 1, 2).float()


def _images(b: int, h: int, w: int, n: int, seed: int = 0) -> list[torch.Tensor]:
    x = torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))
    out = [x]
    for _ in range(n - 1):
        out.insert(0, F.avg_pool2d(out[0], 2))
    return out


def _pair(h: int = 48, w: int = 80):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.int64)
    mask[h // 4: h // 2, w // 4: w // 2] = 1
    mask[h // 2:, w // 2:] = 2
    return img, mask


def _d(cfg: OSMISConfig, hw=(48, 80)) -> OSMISDiscriminator:
    torch.manual_seed(0)
    return OSMISDiscriminator(cfg, auto_architecture(*hw, n_low_level=cfg.n_low_level)).eval()


# --- defaults: thesis values and reference-notes parameter counts -------------------------------
def test_defaults_are_thesis_values():
    c = OSMISConfig()
    assert (c.mask_supervision, c.branches, c.regularization, c.dr_space) == ("mca", "both", "dr", "feature")
    assert c.lambda_dr == 0.15 and c.bernoulli_warmup == 15000                       # thesis l.1462, l.1749
    assert c.feature_augmentation and c.low_level_loss and c.n_low_level is None and c.noise_shape is None
    assert c.diversity_mode == "dr_feature"


@pytest.mark.parametrize("classes, g_m, d_m", [(0, 5.903, 1.256), (2, 5.904, 2.442), (5, 5.904, 2.447)])
def test_default_parameter_counts_unchanged(classes, g_m, d_m):
    cfg = OSMISConfig(num_mask_classes=classes)
    arch = auto_architecture(256, 256)
    assert round(count_parameters(OSMISGenerator(cfg, arch)) / 1e6, 3) == g_m
    assert round(count_parameters(OSMISDiscriminator(cfg, arch)) / 1e6, 3) == d_m


# --- Table 6.3: mask supervision ------------------------------------------------------------------
def test_mask_supervision_parameter_counts_and_heads():
    """Hand-computed differences to the unsupervised baseline ("none"), 256x256, K=2, ch_D=32."""
    arch = auto_architecture(256, 256)
    n = {ms: count_parameters(OSMISDiscriminator(OSMISConfig(num_mask_classes=2, mask_supervision=ms), arch))
         for ms in ("none", "mca", "concat", "projection", "d_m")}
    # content heads: 4 blocks, final 1x1 conv with K+1 = 3 instead of 1 outputs; widths (512,512,512,256)
    assert n["mca"] - n["none"] == (512 + 512 + 512 + 256) * 2 + 4 * 2
    # concat: every from_rgb 3x3 conv gets K=2 more input channels; outputs 32, 64/8, 128/8
    assert n["concat"] - n["none"] == 9 * 2 * (32 + 8 + 16)
    # projection: a bias-free 1x1 K -> C(=256, D_low-level output width) embedding
    assert n["projection"] - n["none"] == 2 * 256
    # D_m: a separate discriminator; everything else unchanged
    d_dm = OSMISDiscriminator(OSMISConfig(num_mask_classes=2, mask_supervision="d_m"), arch)
    assert n["d_m"] - n["none"] == count_parameters(d_dm.d_m) > 1_000_000
    # without masks (SIV-GAN) every variant falls back to the plain content branch
    siv = OSMISConfig(mask_supervision="concat")
    assert siv.supervision == "none"
    assert count_parameters(OSMISDiscriminator(siv, arch)) == count_parameters(OSMISDiscriminator(OSMISConfig(), arch))


def test_mask_supervision_aliases_and_validation():
    assert OSMISConfig(mask_supervision="input_concat").mask_supervision == "concat"
    assert OSMISConfig(mask_supervision="semanticgan_dm").mask_supervision == "d_m"
    assert OSMISConfig(dr_space="features").dr_space == "feature"
    with pytest.raises(ConfigError):
        OSMISConfig(mask_supervision="attention")
    with pytest.raises(ConfigError, match="projection"):
        OSMISConfig(mask_supervision="projection", low_level_loss=False)


def test_none_and_mca_content_outputs():
    imgs, m = _images(2, 48, 80, 2), _onehot(2, 48, 80)
    mca = _d(OSMISConfig(num_mask_classes=K, **TINY))
    none = _d(OSMISConfig(num_mask_classes=K, mask_supervision="none", **TINY))
    assert mca(imgs, m, real=True).content[0].shape == (K * 2, K + 1, 1, 1)   # one vector per object (Eq. 6.4)
    out = none(imgs, m, real=True)
    assert out.content[0].shape == (2, 1, 1, 1) and out.n_classes == 0         # SIV-GAN D_content
    flat = lambda o: torch.cat([t.flatten() for t in o.low_level + o.content + o.layout])  # noqa: E731
    none.fa = False
    assert torch.equal(flat(none(imgs, m, real=True)), flat(none(imgs, 1 - m, real=True)))  # masks ignored


def test_concat_feeds_masks_at_every_input_scale():
    d = _d(OSMISConfig(num_mask_classes=K, mask_supervision="concat", feature_augmentation=False, **TINY))
    assert all(conv.weight_orig.shape[1] == 3 + K for conv in d.rgb_to_features)
    imgs, m = _images(2, 48, 80, d.n_low_level), _onehot(2, 48, 80)
    a, b = d(imgs, m, real=True), d(imgs, _onehot(2, 48, 80, seed=1), real=True)
    assert not torch.equal(a.low_level[0], b.low_level[0])  # the first block already sees the mask
    with pytest.raises(ValueError, match="needs masks"):
        d(imgs, None, real=True)


def test_projection_adds_inner_product_to_last_low_level_decision():
    cfg = OSMISConfig(num_mask_classes=K, mask_supervision="projection", **TINY)
    d = _d(cfg)
    base = _d(OSMISConfig(num_mask_classes=K, mask_supervision="none", **TINY))
    base.load_state_dict({k: v for k, v in d.state_dict().items() if not k.startswith("projection")})
    d.fa = base.fa = False
    imgs, m = _images(2, 48, 80, d.n_low_level), _onehot(2, 48, 80)
    feats = {}
    d.body_ll[-1].register_forward_hook(lambda mod, i, o: feats.__setitem__("y", o))
    out, ref = d(imgs, m, real=True), base(imgs, m, real=True)
    y = feats["y"]
    small = F.interpolate(m, size=y.shape[-2:], mode="nearest")
    v = d.projection.weight.detach()[:, :, 0, 0]                      # (C, K), spectral-normalised
    expected = torch.einsum("bchw,ck,bkhw->bhw", y, v, small)[:, None]  # <phi(x), V m> per pixel
    assert torch.allclose(out.low_level[-1] - ref.low_level[-1], expected, atol=1e-5)
    for a, b in zip(out.low_level[:-1] + out.content + out.layout, ref.low_level[:-1] + ref.content + ref.layout):
        assert torch.equal(a, b)


def _g_grads(cfg: OSMISConfig, term: str | None):
    """Gradients of G's parameters from one adversarial G loss term (None: all terms)."""
    arch = auto_architecture(48, 80)
    torch.manual_seed(0)
    g, d = OSMISGenerator(cfg, arch), OSMISDiscriminator(cfg, arch)
    out = g(torch.randn(2, cfg.noise_dim, 1, 1), features=False)
    d_out = d(out.images[-arch.n_low_level:], out.masks, real=False, iteration=10 ** 6)
    losses = adversarial_losses(d_out, True, cfg, out.masks)
    loss = sum(losses.values()) if term is None else losses[term]
    g.zero_grad(set_to_none=True)
    loss.backward()
    norm = lambda p: 0.0 if p.grad is None else float(p.grad.abs().sum())  # noqa: E731
    mask = sum(norm(p) for p in g.mask_converter.parameters())
    image = {n: norm(p) for n, p in g.named_parameters() if not n.startswith("mask_converter")}
    return losses, mask, image


def test_d_m_gradient_reaches_only_the_mask_branch():
    cfg = OSMISConfig(num_mask_classes=K, mask_supervision="d_m", **TINY)
    losses, mask, image = _g_grads(cfg, "mask_d")
    assert set(losses) == {"low_level", "content", "layout", "mask_d"}
    assert mask > 0 and all(v == 0.0 for v in image.values())   # D_m -> mask branch only (thesis l.1798)
    _, mask_adv, image_adv = _g_grads(cfg, None)
    assert mask_adv == mask and sum(image_adv.values()) > 0     # the other terms never touch the mask head


@pytest.mark.parametrize("ms, reaches_mask", [("mca", True), ("concat", True), ("projection", True),
                                              ("none", False)])
def test_mask_branch_supervised_or_not(ms, reaches_mask):
    cfg = OSMISConfig(num_mask_classes=K, mask_supervision=ms, **TINY)
    losses, mask, image = _g_grads(cfg, None)
    assert "mask_d" not in losses and sum(image.values()) > 0
    assert (mask > 0) == reaches_mask


def test_d_m_trains_end_to_end_with_mask_d_loss_logged():
    img, mask = _pair()
    torch.manual_seed(0)
    tr = OSMISTrainer(OSMISConfig(mask_supervision="d_m", **TINY), img, mask)
    logs = tr.train_step(0)
    assert {"G_mask_d", "D_real_mask_d", "D_fake_mask_d"} <= set(logs)
    assert any(k.startswith("d_m.") for k in tr.D.state_dict())
    assert all(math.isfinite(v) for v in logs.values())


# --- Table 5.3: branches, FA, low-level loss ---------------------------------------------------
@pytest.mark.parametrize("branches, n_content, n_layout", [("both", 4, 4), ("content", 4, 0), ("layout", 0, 4),
                                                             ("none", 0, 0)])
def test_branches_switch(branches, n_content, n_layout):
    arch = auto_architecture(256, 256)
    d = OSMISDiscriminator(OSMISConfig(branches=branches), arch)
    assert (len(d.body_content), len(d.body_layout)) == (n_content, n_layout)
    full = count_parameters(OSMISDiscriminator(OSMISConfig(), arch))
    assert (count_parameters(d) < full) == (branches != "both")
    out = _d(OSMISConfig(branches=branches, **TINY))(_images(2, 48, 80, 2), real=False)
    keys = set(adversarial_losses(out, True, OSMISConfig(branches=branches)))
    assert keys == {"low_level"} | ({"content"} if n_content else set()) | ({"layout"} if n_layout else set())


def test_feature_augmentation_switch():
    imgs = _images(4, 48, 80, 2)
    flat = lambda o: torch.cat([t.flatten() for t in o.content + o.layout])  # noqa: E731
    off = _d(OSMISConfig(feature_augmentation=False, **TINY))
    assert torch.equal(flat(off(imgs, real=True)), flat(off(imgs, real=False)))   # FA off: reals untouched
    on = _d(OSMISConfig(prob_fa_content=1.0, prob_fa_layout=1.0, **TINY))
    torch.manual_seed(1)
    assert not torch.equal(flat(on(imgs, real=True)), flat(on(imgs, real=False)))


def test_low_level_loss_switch():
    out = _d(OSMISConfig(**TINY))(_images(2, 48, 80, 2), real=False)
    assert "low_level" in adversarial_losses(out, True, OSMISConfig())
    assert set(adversarial_losses(out, True, OSMISConfig(low_level_loss=False))) == {"content", "layout"}


# --- Tables 5.6 / 6.4: number of low-level blocks ----------------------------------------------
def test_n_low_level_switch_keeps_total_depth():
    counts = set()
    for n in range(1, 7):   # Table 5.6: 1..6 with the overall depth of 7 blocks (thesis l.1583)
        arch = auto_architecture(256, 256, n_low_level=n)
        d = OSMISDiscriminator(OSMISConfig(n_low_level=n), arch)
        assert (len(d.body_ll), len(d.body_content), len(d.body_layout)) == (n, 7 - n, 7 - n)
        counts.add(count_parameters(d))
    assert len(counts) == 6
    cfg = OSMISConfig(n_low_level=1, num_mask_classes=K, **TINY)   # forward at the smallest value, with MCA
    d = OSMISDiscriminator(cfg, auto_architecture(96, 160, n_low_level=1))
    out = d(_images(2, 96, 160, 1), _onehot(2, 96, 160), real=True)
    assert len(out.low_level) == 1 and out.low_level[0].shape[-2:] == (48, 80) and len(out.content) == 6


# --- Tables 5.4 / 5.5: diversity regularisation -------------------------------------------------
def test_zcr_and_ds_hand_cases():
    a = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert math.isclose(zcr_distance(a, torch.zeros(2, 2)).item(), 3 / 4)      # mean squared difference
    img = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 2.0]])                   # per pair mean |.|: 2, 2, 1
    z = torch.tensor([[0.0], [1.0], [3.0]])                                    # |dz|: 1, 3, 2
    assert math.isclose(ds_distance(img, z).item(), (2 / 1 + 2 / 3 + 1 / 2) / 3, rel_tol=1e-6)
    assert math.isclose(ds_distance(img, z, tau=1.0).item(), (1 + 2 / 3 + 1 / 2) / 3, rel_tol=1e-6)
    assert ds_distance(img[:1], z[:1]).item() == 0.0


@pytest.mark.parametrize("params, mode, log", [
    ({}, "dr_feature", "G_dr_distance"),
    ({"dr_space": "image"}, "dr_image", "G_dr_distance"),
    ({"dr_space": "off"}, "none", None),
    ({"lambda_dr": 0.0}, "none", None),
    ({"regularization": "none"}, "none", None),
    ({"regularization": "zcr"}, "zcr", "G_zcr_distance"),
    ({"regularization": "ds"}, "ds", "G_ds_distance"),
])
def test_regularization_switch(params, mode, log):
    img, _ = _pair()
    cfg = OSMISConfig(**params, **TINY)
    assert cfg.diversity_mode == mode
    torch.manual_seed(0)
    tr = OSMISTrainer(cfg, img)
    calls = []
    tr.G.register_forward_hook(lambda mod, i, o: calls.append(len(o.features)))
    logs = tr.train_step(0)
    dist_keys = {k for k in logs if k.endswith("_distance")}
    assert dist_keys == ({log} if log else set())
    # G forward passes: G step (+1 for zCR's perturbed latent) and the D step; features only for DR
    assert len(calls) == (3 if mode == "zcr" else 2)
    assert calls[0] == (tr.arch.n_blocks_G if mode == "dr_feature" else 0)


def test_lambda_dr_scales_the_generator_objective():
    img, _ = _pair()
    totals = {}
    for lam in (0.0, 0.05, 0.5):   # Table 5.5 values
        torch.manual_seed(0)
        tr = OSMISTrainer(OSMISConfig(lambda_dr=lam, **TINY), img)
        torch.manual_seed(1)
        logs = tr.train_step(0)
        adv = logs["G_low_level"] + logs["G_content"] + logs["G_layout"]
        totals[lam] = (logs["G_total"], adv, logs.get("G_dr_distance", 0.0))
    for lam, (total, adv, dist) in totals.items():
        assert math.isclose(total, adv - lam * dist, rel_tol=1e-5, abs_tol=1e-6)
    assert totals[0.05][2] > 0 and totals[0.0][2] == 0.0


def test_dr_image_space_uses_final_images_only():
    img, _ = _pair()
    torch.manual_seed(0)
    tr = OSMISTrainer(OSMISConfig(dr_space="image", **TINY), img)
    z = torch.randn(2, 64, 1, 1)
    out = tr.G(z, features=False)
    name, dist = tr._diversity("dr_image", z, out)
    assert name == "G_dr_distance" and torch.equal(dist, diversity_distance([out.images[-1]]))


# --- Table 6.3 / Eq. 6.3: Bernoulli warm-up P0 ----------------------------------------------------
def test_bernoulli_warmup_switch():
    imgs = _images(2, 48, 80, 2)
    soft = torch.softmax(torch.randn(2, K, 48, 80, generator=torch.Generator().manual_seed(2)), dim=1)
    d = _d(OSMISConfig(num_mask_classes=K, bernoulli_warmup=10, **TINY))
    c = lambda it: d(imgs, soft, real=False, iteration=it).content[0]  # noqa: E731
    torch.manual_seed(0)
    warm_a, warm_b, hard_a, hard_b = c(0), c(9), c(10), c(11)
    assert not torch.equal(warm_a, warm_b)                 # Bernoulli draws before P0
    assert torch.equal(hard_a, hard_b)                     # argmax from P0 on: deterministic
    y = {}
    d.body_ll[-1].register_forward_hook(lambda mod, i, o: y.__setitem__("y", o))
    d(imgs, soft, real=False, iteration=10)
    hard = F.one_hot(F.interpolate(soft, size=y["y"].shape[-2:], mode="nearest").argmax(1), K).permute(0, 3, 1, 2)
    v = masked_content_attention(y["y"], hard.float())
    ref = d.body_content[0](v)
    assert torch.allclose(d.final_content[0](ref), hard_a, atol=1e-6)


# --- noise map shape (thesis l.1456) --------------------------------------------------------------
def test_noise_shape_override():
    auto = auto_architecture(96, 160)
    assert auto.noise_shape == (3, 5) and auto.resolution == (96, 160)
    arch = auto_architecture(96, 160, noise_shape=(4, 4))
    assert arch.noise_shape == (4, 4) and arch.resolution == (128, 128) and arch.n_blocks_G == auto.n_blocks_G
    cfg = OSMISConfig(noise_shape=[4, 4], **TINY)
    assert cfg.noise_shape == (4, 4)
    g = OSMISGenerator(cfg, arch)
    assert g.first_linear.kernel_size == (4, 4)
    assert g(torch.randn(1, 64, 1, 1), features=False).images[-1].shape == (1, 3, 128, 128)
    img, _ = _pair(96, 160)
    tr = OSMISTrainer(cfg, img)
    assert tr.arch.resolution == (128, 128) and tr.real_images[-1].shape[-2:] == (128, 128)
    with pytest.raises(ConfigError):
        OSMISConfig(noise_shape=(0, 3))
