"""SIV-GAN / OSMIS networks, losses and augmentation against the reference notes and thesis equations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_core.augment.diffaug import augment
from gan_core.errors import ConfigError
from gan_core.losses.osmis import (adversarial_losses, class_balance_weights, diversity_distance,
                                   object_loss)
from gan_core.nets.osmis import (DiscriminatorOutput, OSMISDiscriminator, OSMISGenerator, auto_architecture,
                                 count_parameters, content_fa, layout_fa, mask_argmax, masked_content_attention)
from gan_core.nets.osmis_config import OSMISConfig
from gan_core.utils.dataclass_config import from_dict


# --- reference notes §2.3 parameter counts at 256x256, g=7 ------------------------------------
@pytest.mark.parametrize("classes, g_m, d_m", [(0, 5.903, 1.256), (2, 5.904, 2.442), (5, 5.904, 2.447)])
def test_parameter_counts_match_reference(classes, g_m, d_m):
    cfg = OSMISConfig(num_mask_classes=classes)
    arch = auto_architecture(256, 256, cfg.max_size)
    assert abs(count_parameters(OSMISGenerator(cfg, arch)) / 1e6 - g_m) <= 0.002
    assert abs(count_parameters(OSMISDiscriminator(cfg, arch)) / 1e6 - d_m) <= 0.002


# --- reference notes §2.2 examples ------------------------------------------------------------
@pytest.mark.parametrize("hw, max_size, res, noise, g, d, d0", [
    ((256, 256), 1024, (256, 256), (4, 4), 7, 7, 3),
    ((384, 640), 1024, (384, 640), (3, 5), 8, 7, 4),
    ((480, 854), 330, (192, 320), (3, 5), 7, 7, 3),
    ((480, 854), 1024, (512, 896), (4, 7), 8, 7, 4),
    ((48, 80), 1024, (48, 80), (3, 5), 5, 6, 2),
])
def test_auto_architecture_examples(hw, max_size, res, noise, g, d, d0):
    a = auto_architecture(*hw, max_size=max_size)
    assert (a.resolution, a.noise_shape, a.n_blocks_G, a.n_blocks_D, a.n_low_level) == (res, noise, g, d, d0)


def test_auto_architecture_rejects_too_small_and_overrides_low_level():
    with pytest.raises(ConfigError):
        auto_architecture(30, 40)
    assert auto_architecture(256, 256, n_low_level=2).n_low_level == 2
    with pytest.raises(ConfigError):
        auto_architecture(256, 256, n_low_level=7)


def test_config_from_dict_and_validation():
    cfg = from_dict(OSMISConfig, {"image_size": [48, 80], "ch_G": 8, "betas": [0.0, 0.99]})
    assert cfg.image_size == (48, 80) and cfg.betas == (0.0, 0.99)
    assert cfg.lambda_dr == 0.15 and cfg.bernoulli_warmup == 15000 and cfg.batch_size == 5
    with pytest.raises(ConfigError):
        from_dict(OSMISConfig, {"dr_space": "pixels"})
    with pytest.raises(ConfigError):
        from_dict(OSMISConfig, {"no_such_key": 1})


# --- thesis Eq. 6.2 / 6.3 ---------------------------------------------------------------------
def test_mask_argmax_forward_one_hot_and_straight_through_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    soft = torch.softmax(logits, dim=1)
    soft.retain_grad()
    hard = mask_argmax(soft, iteration=100, warmup=10)
    expected = F.one_hot(soft.argmax(1), 4).permute(0, 3, 1, 2).float()
    assert torch.equal(hard, expected)
    g = torch.randn_like(hard)
    (hard * g).sum().backward()
    assert torch.equal(soft.grad, g)  # identity gradient (straight-through)


def test_bernoulli_warmup_behaviour():
    torch.manual_seed(0)
    soft = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1).expand(1, 2, 200, 200).contiguous()
    warm = mask_argmax(soft, iteration=5, warmup=10)
    assert set(warm.unique().tolist()) <= {0.0, 1.0}
    frac = warm.mean(dim=(0, 2, 3))
    assert torch.allclose(frac, torch.tensor([0.3, 0.7]), atol=0.02)  # E[T(y)] = y during warm-up
    after = mask_argmax(soft, iteration=10, warmup=10)
    assert torch.equal(after[:, 0], torch.zeros(1, 200, 200)) and torch.equal(after[:, 1], torch.ones(1, 200, 200))


# --- thesis Eq. 6.4 - 6.6 -------------------------------------------------------------------
def test_masked_content_attention_matches_eq_6_4():
    y = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    lab = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [0, 1]]])
    m = F.one_hot(lab, 2).permute(0, 3, 1, 2).float()
    v = masked_content_attention(y, m).view(2, 2, 3)  # (K, B, C)
    for k in range(2):
        for b in range(2):
            expected = (y[b] * (lab[b] == k)).mean(dim=(1, 2))  # AvgPool over all pixels
            assert torch.allclose(v[k, b], expected)


def test_class_balance_weights_hand_case():
    # batch of 2 masks, class 0: 5 px, class 1: 2 px, class 2: 1 px  -> inverse (1/5, 1/2, 1)
    lab = torch.tensor([[[0, 0], [1, 2]], [[0, 0], [0, 1]]])
    m = F.one_hot(lab, 3).permute(0, 3, 1, 2).float()
    inv = torch.tensor([1 / 5, 1 / 2, 1.0])
    assert torch.allclose(class_balance_weights(m), inv / inv.sum())  # Eq. 6.6
    m_absent = F.one_hot(torch.zeros(1, 2, 2, dtype=torch.long), 3).permute(0, 3, 1, 2).float()
    assert torch.allclose(class_balance_weights(m_absent), torch.tensor([1.0, 0.0, 0.0]))


def test_object_loss_equals_weighted_cross_entropy():
    torch.manual_seed(1)
    k, b = 3, 4
    lab = torch.randint(0, k, (b, 6, 6))
    m = F.one_hot(lab, k).permute(0, 3, 1, 2).float()
    logits = torch.randn(k * b, k + 1, 1, 1)
    # second source: torch's weighted CE with weights 1/count (+1 for the fake class), as in the official code
    weights = torch.cat([1.0 / m.sum(dim=(0, 2, 3)), torch.ones(1)])
    target = torch.arange(k).repeat_interleave(b)
    ref_real = F.cross_entropy(logits.flatten(1), target, weight=weights)
    assert torch.allclose(object_loss(logits, m, True), ref_real, atol=1e-6)
    ref_fake = F.cross_entropy(logits.flatten(1), torch.full((k * b,), k))
    assert torch.allclose(object_loss(logits, m, False), ref_fake, atol=1e-6)


# --- thesis Eq. 5.1 / 5.2 and Eq. 5.3 -----------------------------------------------------------
def test_branch_normalisation_thesis_and_official():
    zero = torch.zeros(1, 1, 2, 2)
    out = DiscriminatorOutput([zero] * 3, [torch.zeros(1, 1, 1, 1)] * 4, [zero] * 4, 0, 7)
    bce0 = math.log(2.0)  # BCE of logit 0
    thesis = adversarial_losses(out, True, OSMISConfig())
    assert math.isclose(thesis["low_level"].item(), 2 * bce0, rel_tol=1e-6)
    assert math.isclose(thesis["content"].item(), bce0, rel_tol=1e-6)
    official = adversarial_losses(out, True, OSMISConfig(loss_normalisation="official"))
    assert math.isclose(official["low_level"].item(), 3 * bce0 / 7, rel_tol=1e-6)   # 1.0/N_D per block
    assert math.isclose(official["layout"].item(), 0.5 * 4 * bce0 / 7, rel_tol=1e-6)  # 0.5/N_D per block


def test_diversity_regularisation_hand_case():
    f1 = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 2.0]])      # 3 samples, 2 elements
    f2 = torch.tensor([[0.0], [0.0], [4.0]])
    # pairs (0,1), (0,2), (1,2): layer 1 mean |.|: 2, 2, 1 ; layer 2: 0, 4, 4
    assert math.isclose(diversity_distance([f1, f2], "thesis").item(), (2 + 2 + 1 + 0 + 4 + 4) / 6, rel_tol=1e-6)
    assert math.isclose(diversity_distance([f1, f2], "official").item(), (2 + 2 + 1 + 0 + 4 + 4) * 2 / (2 * 1), rel_tol=1e-6)


# --- differentiable augmentation ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["siv", "ada"])
def test_augmentation_identical_for_image_and_mask(kind):
    """An image whose pixel values are the mask labels, augmented together with the one-hot mask:
    where the bilinear image is locally constant it must equal the augmented label exactly."""
    torch.manual_seed(0)
    lab = torch.randint(0, 4, (4, 6, 10)).repeat_interleave(8, 1).repeat_interleave(8, 2)  # 48x80 blocks
    onehot = F.one_hot(lab, 4).permute(0, 3, 1, 2).float()
    as_image = lab[:, None].float().expand(4, 3, 48, 80).contiguous()
    cfg_colour_free = kind  # colour transforms would change the image values: compare geometry only
    from gan_core.augment.diffaug import apply_params, sample_params
    p = sample_params(4, 48, 80, cfg_colour_free, prob=1.0)
    p.color = p.offset = None
    (a_img,), a_mask = apply_params([as_image], onehot, p)
    assert not torch.equal(a_mask, onehot)                        # something happened
    assert set(a_mask.unique().tolist()) <= {0.0, 1.0} and torch.equal(a_mask.sum(1), torch.ones(4, 48, 80))
    # pixels whose bilinear footprint lies inside one label region (bilinear one-hot has a 1)
    from gan_core.augment.diffaug import _warp
    uniform = _warp(onehot, p.theta, "bilinear").amax(dim=1) > 1 - 1e-4
    assert uniform.float().mean() > 0.6
    val = a_img[:, 0]
    assert torch.allclose(val[uniform], a_mask.argmax(1).float()[uniform], atol=1e-4)
    # with nearest sampling on both the agreement is total
    assert torch.equal(_warp(as_image, p.theta, "nearest")[:, 0], a_mask.argmax(1).float())


def test_augmentation_flip_translate_exact_and_scales_consistent():
    torch.manual_seed(3)
    lab = torch.randint(0, 3, (2, 16, 32))
    onehot = F.one_hot(lab, 3).permute(0, 3, 1, 2).float()
    img = lab[:, None].float().expand(2, 3, 16, 32).contiguous()
    low = F.avg_pool2d(img, 2)
    torch.manual_seed(5)
    (a_low, a_img), a_mask = augment([low, img], onehot, kind="siv", prob=1.0)
    assert a_low.shape == low.shape and a_img.shape == img.shape
    # bilinear image and nearest mask come from the same map: far from label edges they agree
    # exactly for the identity probability 0 and approximately otherwise
    (i0,), m0 = augment([img], onehot, kind="siv", prob=0.0)
    assert torch.equal(i0, img) and torch.equal(m0, onehot)
    # gradients flow through soft masks and images
    soft = torch.softmax(torch.randn(2, 3, 16, 32, requires_grad=True), 1)
    x = img.clone().requires_grad_(True)
    (ax,), am = augment([x], soft, kind="ada", prob=1.0)
    (ax.sum() + am.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(am.sum(1), torch.ones(2, 16, 32), atol=1e-5)  # still distributions


# --- feature augmentation: real inputs only ---------------------------------------------------
def test_feature_augmentation_only_on_real_inputs():
    cfg = OSMISConfig(ch_G=4, ch_D=4, prob_fa_content=1.0, prob_fa_layout=1.0)
    cfg_nofa = OSMISConfig(ch_G=4, ch_D=4, feature_augmentation=False)
    arch = auto_architecture(48, 80)
    torch.manual_seed(0)
    d = OSMISDiscriminator(cfg, arch).eval()  # eval: no power iteration, D is a pure function
    d_nofa = OSMISDiscriminator(cfg_nofa, arch).eval()
    d_nofa.load_state_dict(d.state_dict())
    x = torch.randn(4, 3, 48, 80)
    imgs = [F.avg_pool2d(x, 2), x]
    flat = lambda o: torch.cat([t.flatten() for t in o.low_level + o.content + o.layout])  # noqa: E731
    ref = flat(d_nofa(imgs, real=True))
    assert torch.equal(flat(d(imgs, real=False)), ref)          # fakes: untouched
    out_real = d(imgs, real=True)
    assert torch.equal(torch.cat([t.flatten() for t in out_real.low_level]),
                       torch.cat([t.flatten() for t in d_nofa(imgs, real=True).low_level]))
    assert not torch.equal(flat(out_real), ref)                  # reals: augmented after the low-level part


def test_content_and_layout_fa_hand_properties():
    torch.manual_seed(0)
    v = torch.randn(4, 20, 1, 1)
    out = content_fa(v.clone(), rows=2, prob=1.0)
    assert torch.equal(out[2:], v[2:])                           # rows beyond `rows` untouched
    pair_in = torch.cat([v[0], v[1]]).flatten()
    pair_out_nonzero = out[:2].flatten()
    assert ((pair_out_nonzero == 0) | torch.isin(pair_out_nonzero, pair_in)).all()  # only swaps and drops
    y = torch.randn(2, 3, 8, 8)
    mixed = layout_fa(y, prob=1.0)
    changed = (mixed != y).any(dim=1)
    assert changed[0].any() and torch.equal(changed[0], changed[1])  # the same rectangle swapped both ways
    assert torch.equal(mixed[0][:, changed[0]], y[1][:, changed[0]])
