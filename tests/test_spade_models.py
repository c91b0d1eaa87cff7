"""SPADE+ generator, PatchGAN discriminators, label encodings, the semantic-GAN switch set and the SPADE losses
(thesis Tables 4.8-4.11, appendix Tables 10/12; reference notes §1, §3). Full-size networks are built on the
meta device (no memory, no compute)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_core.errors import ConfigError, DataError, MissingResourceError
from gan_core.losses.oasis import (cutmix_mask, labelmix, labelmix_consistency, labelmix_mask, mixed_n_plus_one_target,
                                   mixing_mask, n_plus_one_loss)
from gan_core.losses.semantic_gan import SemanticGANLoss, d_adversarial_losses, g_adversarial_loss
from gan_core.losses.spade import (VGG19Features, VGGLoss, feature_matching_loss, hinge_d_fake, hinge_d_loss,
                                   hinge_d_real, hinge_g_loss)
from gan_core.nets.oasis import OASISGenerator, count_parameters
from gan_core.nets.oasis_config import OASISConfig
from gan_core.nets.patchgan import DOutput, NLayerPatchGAN, ResNetPatchGAN, SemanticDiscriminator
from gan_core.nets.semantic_gan_factory import (DISCRIMINATORS, SemanticGANConfig, build_discriminator,
                                                build_generator, pick_noise_mode)
from gan_core.nets.spade import SPADEGenerator
from gan_core.nets.spade_blocks import SPADEResBlock
from gan_core.nets.spade_config import SPADEConfig
from gan_core.utils.atomic import torch_save

N = 5  # classes of the small test label maps
SMALL_OASIS = dict(semantic_nc=N, crop_size=64, ch_G=2, z_dim=8, spade_hidden=8,
                   d_channels=(4, 4, 8, 8, 16, 16), d_last_channels=4)
SMALL_SPADE = dict(semantic_nc=N, crop_size=64, ngf=2, spade_hidden=4, z_dim=8)


def _cfg(**kw) -> SemanticGANConfig:
    base = dict(oasis=OASISConfig(**SMALL_OASIS), spade=SPADEConfig(**SMALL_SPADE), ndf=8)
    base.update(kw)
    return SemanticGANConfig(**base)


def _label(b=2, size=64, seed=0):
    """Three regions: class 1 (left half), 2 (right, bottom 3/4), 3 (right, top 1/4)."""
    idx = torch.full((b, size, size), 1, dtype=torch.long)
    idx[:, :, size // 2:] = 2
    idx[:, : size // 4, size // 2:] = 3
    return F.one_hot(idx, N).permute(0, 3, 1, 2).float(), idx


# --- parameter counts against reference notes §3 [CPU-check] ----------------------------------------
@pytest.mark.parametrize("kw, g_m", [
    ({}, 96.49),                                       # ADE20K (thesis l.1292: "96M")
    ({"dataset": "cityscapes", "semantic_nc": 36}, 93.05),  # SPADE adds the instance-edge channel
    ({"dataset": "coco", "semantic_nc": 184}, 97.48),
])
def test_spade_generator_parameter_counts(kw, g_m):
    with torch.device("meta"):
        g = SPADEGenerator(SPADEConfig(**kw))
    assert abs(count_parameters(g) / 1e6 - g_m) <= 0.01


@pytest.mark.parametrize("semantic_nc, d_m", [(151, 5.84), (36 + 0, 5.60), (184, 5.90)])
def test_ms_patchgan_parameter_counts(semantic_nc, d_m):
    """SPADE MultiscaleDiscriminator: 2 scales x NLayer(4) on label ⊕ image (reference notes §3)."""
    with torch.device("meta"):
        d = build_discriminator(SemanticGANConfig.spade_plus(), semantic_nc)
    assert abs(count_parameters(d) / 1e6 - d_m) <= 0.01
    # hand count of one scale: conv(in,64,4)+b; SN convs 64->128->256->512 without bias; conv(512,1,4)+b
    cin = semantic_nc + 3
    one = cin * 64 * 16 + 64 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16 + 1
    assert count_parameters(d) == 2 * one


def test_spade_generator_shares_the_oasis_blocks():
    """SPADE+ G = OASIS G (no 3D noise) plus one 1024->1024 SPADE block (thesis l.1095, 96M vs 72M)."""
    with torch.device("meta"):
        sg = SPADEGenerator(SPADEConfig())
        og = OASISGenerator(OASISConfig(no_3dnoise=True))
    assert type(sg.head_0) is SPADEResBlock and type(og.body[0]) is SPADEResBlock
    conv = 1024 * 1024 * 9 + 1024
    spade_norm = 151 * 128 * 9 + 128 + 2 * (128 * 1024 * 9 + 1024)
    assert count_parameters(sg) - count_parameters(og) == 2 * conv + 2 * spade_norm
    assert count_parameters(sg.head_0) == 2 * conv + 2 * spade_norm
    keys = set(sg.state_dict())
    assert {"fc.weight", "head_0.conv_0.weight_orig", "head_0.norm_0.first_norm.running_mean",
            "up_0.conv_s.weight_orig", "up_0.norm_s.mlp_shared.0.weight", "conv_img.weight"} <= keys
    assert "G_middle_0.conv_s.weight_orig" not in keys and "fc.weight_orig" not in keys


# --- shapes -------------------------------------------------------------------------------------------
def test_spade_generator_shapes_and_3d_noise():
    torch.manual_seed(0)
    cfg = SPADEConfig(semantic_nc=N, crop_size=256, ngf=2, spade_hidden=4)
    assert cfg.init_size == (8, 8) and cfg.output_size == (256, 256)
    g = SPADEGenerator(cfg).eval()
    label, _ = _label(b=1, size=256)
    with torch.no_grad():
        out = g(label)
        assert out.shape == (1, 3, 256, 256) and out.abs().max() <= 1
        g64 = SPADEGenerator(SPADEConfig(**SMALL_SPADE)).eval()
        small, _ = _label()
        assert torch.equal(g64(small), g64(small))  # no encoder, no noise: deterministic given the label
    cs = SPADEConfig(dataset="cityscapes", semantic_nc=N, ngf=2, spade_hidden=4)
    assert cs.num_upsampling_layers == "more" and cs.init_size == (4, 8) and cs.output_size == (256, 512)
    with torch.no_grad():  # 'more': 6 upsamplings (a 64x128 run keeps the test fast: 1x2 start)
        cs_small = SPADEConfig(dataset="cityscapes", semantic_nc=N, crop_size=128, ngf=2, spade_hidden=4)
        lab_cs = F.one_hot(torch.randint(0, N, (1, 64, 128)), N).permute(0, 3, 1, 2).float()
        assert cs_small.init_size == (1, 2) and SPADEGenerator(cs_small).eval()(lab_cs).shape == (1, 3, 64, 128)
    # the 3D-noise variant of Table 4.2: fc and SPADE see label + z_dim channels, and z changes the output
    gn = SPADEGenerator(SPADEConfig(**SMALL_SPADE, noise_3d=True)).eval()
    assert gn.fc.in_channels == N + 8 and gn.head_0.norm_0.mlp_shared[0].in_channels == N + 8
    with torch.no_grad():
        a, b = gn(small, z=torch.randn(2, 8)), gn(small, z=torch.randn(2, 8))
    assert a.shape == (2, 3, 64, 64) and (a - b).abs().mean() > 0


def test_ms_patchgan_scales_and_features_at_256():
    """Output sizes by hand: 4x4 convs with padding 2; strides 2,2,2,1,1 -> 256: 129,65,33,34,35;
    the second scale sees the 3x3/2 average-pooled 128x128 input -> 65,33,17,18,19."""
    torch.manual_seed(0)
    d = build_discriminator(_cfg(discriminator="ms_patchgan", ndf=64), N)
    assert d.num_scales == 2 and d.encoding == "concat"
    assert d.nets[0].model0[0].in_channels == N + 3
    label, _ = _label(b=1, size=256)
    with torch.no_grad():
        out = d(torch.randn(1, 3, 256, 256), label)
    assert out.num_scales == 2 and len(out.features) == 2
    assert [tuple(t.shape) for t in out.logits] == [(1, 1, 35, 35), (1, 1, 19, 19)]
    assert [tuple(f.shape[1:]) for f in out.features[0]] == [(64, 129, 129), (128, 65, 65), (256, 33, 33),
                                                             (512, 34, 34)]
    assert [f.shape[-1] for f in out.features[1]] == [65, 33, 17, 18]


@pytest.mark.parametrize("kind", DISCRIMINATORS)
@pytest.mark.parametrize("size", [64, 256])
def test_discriminator_output_shapes(kind, size):
    cfg = _cfg(discriminator=kind, d_label_encoding="n_plus_1_balanced")
    d = build_discriminator(cfg, N)
    label, _ = _label(b=1, size=size)
    with torch.no_grad():
        out = d(torch.randn(1, 3, size, size), label)
    assert all(t.shape[:2] == (1, N + 1) for t in out.logits)
    expect = {"oasis_unet": [size], "resnet_patchgan": [size // 64],
              "patchgan": [size // 8 + 3], "ms_patchgan": [size // 8 + 3, size // 16 + 3]}[kind]
    assert [t.shape[-1] for t in out.logits] == expect
    assert all(len(f) > 0 for f in out.features)


def test_resnet_patchgan_hand_count():
    """Encoder of the OASIS U-Net D + 1x1 head; ResBlockD(fin, fout) = 3x3 conv1 + 3x3 conv2 (+ 1x1 conv_s when
    fin != fout), all with biases (reference notes §1.3)."""
    ch = (3 + N,) + SMALL_OASIS["d_channels"]
    expect = 0
    for fin, fout in zip(ch[:-1], ch[1:]):
        expect += fin * fout * 9 + fout + fout * fout * 9 + fout + (fin * fout + fout if fin != fout else 0)
    expect += ch[-1] * 1 + 1
    net = ResNetPatchGAN(3 + N, 1, SMALL_OASIS["d_channels"])
    assert count_parameters(net) == expect
    d = build_discriminator(_cfg(discriminator="resnet_patchgan"), N)  # default encoding: concat
    assert count_parameters(d) == expect
    dp = build_discriminator(_cfg(discriminator="resnet_patchgan", d_label_encoding="projection"), N)
    assert count_parameters(dp) == expect - N * 4 * 9 - N * 4 + N * 16  # 3-channel input; + N x 16 embedding


# --- one test per switch -------------------------------------------------------------------------------
def test_switch_generator():
    assert isinstance(build_generator(_cfg(), N), OASISGenerator)
    g = build_generator(_cfg(generator="spade_plus"), N)
    assert isinstance(g, SPADEGenerator) and g.cfg.semantic_nc == N
    with pytest.raises(ConfigError, match="output"):
        SemanticGANConfig(generator="spade_plus", oasis=OASISConfig(dataset="cityscapes"))


def test_switch_discriminator():
    kinds = {k: build_discriminator(_cfg(discriminator=k), N) for k in DISCRIMINATORS}
    assert [kinds[k].num_scales for k in DISCRIMINATORS] == [1, 2, 1, 1]
    assert type(kinds["patchgan"].nets[0]) is NLayerPatchGAN
    assert type(kinds["resnet_patchgan"].nets[0]) is ResNetPatchGAN
    assert kinds["oasis_unet"].encoding == "n_plus_1_balanced" and kinds["patchgan"].encoding == "concat"
    assert len({count_parameters(d) for d in kinds.values()}) == 4
    assert build_discriminator(_cfg(discriminator="ms_patchgan", num_d=3), N).num_scales == 3


@pytest.mark.parametrize("kind", ["oasis_unet", "patchgan"])
def test_switch_label_encoding_changes_the_network(kind):
    torch.manual_seed(0)
    img = torch.randn(2, 3, 64, 64)
    label, _ = _label()
    other = torch.roll(label, shifts=1, dims=1)  # different classes, same image
    outs = {}
    for enc in ("concat", "projection", "n_plus_1", "n_plus_1_balanced"):
        d = build_discriminator(_cfg(discriminator=kind, d_label_encoding=enc), N).eval()  # eval: no SN update
        with torch.no_grad():
            a, b = d(img, label).logits[0], d(img, other).logits[0]
        outs[enc] = (d, a, b)
    # concat / projection: one real/fake channel that depends on the label map
    for enc in ("concat", "projection"):
        d, a, b = outs[enc]
        assert a.shape[1] == 1 and (a - b).abs().max() > 0
    assert hasattr(outs["projection"][0], "embeddings") and not hasattr(outs["concat"][0], "embeddings")
    # N+1: the label is not an input (only the loss target); N+1 output channels
    for enc in ("n_plus_1", "n_plus_1_balanced"):
        d, a, b = outs[enc]
        assert a.shape[1] == N + 1 and torch.equal(a, b)


def test_switch_label_encoding_changes_the_loss():
    """concat/projection -> hinge; n_plus_1 -> unbalanced CE; n_plus_1_balanced -> class-balanced CE."""
    torch.manual_seed(0)
    label, idx = _label()
    logits = torch.randn(2, N + 1, 64, 64)
    out = DOutput([logits], [[]])
    plain = _cfg(d_label_encoding="n_plus_1")
    bal = _cfg(d_label_encoding="n_plus_1_balanced")
    assert torch.allclose(g_adversarial_loss(plain, out, label), n_plus_one_loss(logits, idx, True, balancing="none"))
    assert torch.allclose(g_adversarial_loss(bal, out, label), n_plus_one_loss(logits, idx, True, balancing="eq4.3"))
    assert not torch.allclose(g_adversarial_loss(plain, out, label), g_adversarial_loss(bal, out, label))
    one = DOutput([logits[:, :1]], [[]])
    for enc in ("concat", "projection"):
        c = _cfg(discriminator="patchgan", d_label_encoding=enc)
        assert c.adversarial_loss == "hinge"
        assert torch.allclose(g_adversarial_loss(c, one, label), -logits[:, :1].mean())
        l_real, l_fake = d_adversarial_losses(c, one, one, label)
        assert torch.allclose(l_real, F.relu(1 - logits[:, :1]).mean())
        assert torch.allclose(l_fake, F.relu(1 + logits[:, :1]).mean())
    # N+1 on a coarse PatchGAN output: the label map is nearest-resized to the output size
    coarse = DOutput([logits[:, :, ::8, ::8].contiguous()], [[]])
    expect = n_plus_one_loss(coarse.logits[0], idx[:, ::8, ::8], False)
    assert torch.allclose(d_adversarial_losses(plain, coarse, coarse, label)[1], expect)


def _vgg_loss():
    torch.manual_seed(0)
    return VGGLoss(VGG19Features())


def test_switch_vgg_loss():
    torch.manual_seed(0)
    label, _ = _label()
    out = DOutput([torch.randn(2, N + 1, 64, 64)], [[torch.randn(2, 4, 8, 8)]])
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1  # VGG needs no label size
    vgg = _vgg_loss()
    off = SemanticGANLoss(_cfg()).generator(out, label, fake, real)
    on = SemanticGANLoss(_cfg(vgg_loss=True, lambda_vgg=3.0), vgg).generator(out, label, fake, real)
    assert "G_vgg" not in off and torch.allclose(on["G_vgg"], 3.0 * vgg(fake, real))
    assert torch.allclose(on["G_total"], off["G_total"] + on["G_vgg"])
    with pytest.raises(ValueError, match="VGG"):
        SemanticGANLoss(_cfg(vgg_loss=True))


def test_switch_feature_matching():
    torch.manual_seed(0)
    label, _ = _label()
    d = build_discriminator(_cfg(discriminator="ms_patchgan"), N)
    fake, real = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    df, dr = d(fake, label), d(real, label)
    off = SemanticGANLoss(_cfg(discriminator="ms_patchgan")).generator(df, label)
    loss = SemanticGANLoss(_cfg(discriminator="ms_patchgan", feature_matching=True, lambda_fm=10.0))
    assert loss.needs_real_in_g_step
    on = loss.generator(df, label, d_real=dr)
    assert "G_fm" not in off and torch.allclose(on["G_fm"], 10.0 * feature_matching_loss(df.features, dr.features))
    assert on["G_fm"] > 0
    with pytest.raises(ValueError, match="d_real"):
        loss.generator(df, label)


def test_switch_mixing():
    torch.manual_seed(0)
    label, idx = _label(b=3)
    lm, cm = mixing_mask(label, "labelmix"), mixing_mask(label, "cutmix")
    assert mixing_mask(label, "none") is None
    for c in (1, 2, 3):  # LabelMix: constant per class; CutMix ignores the classes (checked in its own test)
        vals = lm[:, 0][idx == c]
        assert vals.min() == vals.max()
    assert cm.shape == lm.shape == (3, 1, 64, 64)
    d = build_discriminator(_cfg(), N)
    real, fake = torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64)
    dr, df, dm = d(real, label), d(fake, label), d(labelmix(real, fake, cm), label)
    with_cr = SemanticGANLoss(_cfg(mixing="cutmix", lambda_mixing=5.0)).discriminator(dr, df, label, dm, cm)
    no_cr = SemanticGANLoss(_cfg(mixing="none")).discriminator(dr, df, label)
    assert "D_mixing" not in no_cr
    assert torch.allclose(with_cr["D_mixing"], 5.0 * labelmix_consistency(dm.logits[0], dr.logits[0], df.logits[0], cm))
    assert torch.allclose(with_cr["D_total"], no_cr["D_total"] + with_cr["D_mixing"])
    assert _cfg().lambda_mixing == OASISConfig(**SMALL_OASIS).lambda_labelmix  # None -> OASIS lambda_LM


def test_switch_noise_sampling():
    assert pick_noise_mode(_cfg()) == "image"
    assert pick_noise_mode(_cfg(noise_sampling="pixel")) == "pixel"
    mix = _cfg(noise_sampling="mix")
    modes = [pick_noise_mode(mix, torch.Generator().manual_seed(s)) for s in range(20)]
    assert set(modes) == {"image", "region"}
    assert modes == [pick_noise_mode(mix, torch.Generator().manual_seed(s)) for s in range(20)]
    with pytest.raises(ConfigError):
        _cfg(noise_sampling="region", oasis=OASISConfig(**SMALL_OASIS, no_3dnoise=True))


# --- losses ----------------------------------------------------------------------------------------------
def test_hinge_hand_values():
    real = torch.tensor([[2.0, 0.5, -1.0]])   # relu(1 - x) = 0, 0.5, 2
    fake = torch.tensor([[-2.0, 0.0, 1.0]])   # relu(1 + x) = 0, 1, 2
    assert math.isclose(hinge_d_real(real).item(), 2.5 / 3, rel_tol=1e-6)
    assert math.isclose(hinge_d_fake(fake).item(), 1.0, rel_tol=1e-6)
    assert math.isclose(hinge_d_loss(real, fake).item(), 2.5 / 3 + 1.0, rel_tol=1e-6)
    assert math.isclose(hinge_g_loss(fake).item(), 1.0 / 3, rel_tol=1e-6)  # -mean(-2, 0, 1)
    # multi-scale: the mean over scales
    s2 = torch.tensor([[3.0]])  # relu(1 - 3) = 0, relu(1 + 3) = 4, G: -3
    assert math.isclose(hinge_d_real([real, s2]).item(), (2.5 / 3 + 0) / 2, rel_tol=1e-6)
    assert math.isclose(hinge_d_fake([fake, s2]).item(), (1.0 + 4.0) / 2, rel_tol=1e-6)
    assert math.isclose(hinge_g_loss([fake, s2]).item(), (1.0 / 3 - 3.0) / 2, rel_tol=1e-6)


def test_feature_matching_hand_value():
    fake = [[torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([0.0, 0.0])], [torch.tensor([3.0])]]
    real = [[torch.tensor([0.0, 2.0], requires_grad=True), torch.tensor([1.0, 1.0])], [torch.tensor([1.0])]]
    # scale 0: mean|1-0|,|2-2| = 0.5 ; mean(1, 1) = 1 ; scale 1: 2 -> (0.5 + 1 + 2) / 2 scales
    loss = feature_matching_loss(fake, real)
    assert math.isclose(loss.item(), 1.75, rel_tol=1e-6)
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None  # the real features are detached
    with pytest.raises(ValueError):
        feature_matching_loss(fake, real[:1])


def test_cutmix_box_and_consistent_label():
    label, idx = _label(b=2)
    real, fake = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    nontrivial = 0
    for seed in range(10):
        m = cutmix_mask(label, generator=torch.Generator().manual_seed(seed))
        assert m.shape == (2, 1, 64, 64) and set(m.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(m[0], m[1])  # one box per mini-batch by default
        box = m[0, 0] == 0
        if box.any():
            rows, cols = box.any(1).nonzero()[:, 0], box.any(0).nonzero()[:, 0]
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            assert box[r0:r1, c0:c1].all() and box.sum() == (r1 - r0) * (c1 - c0)  # exactly one rectangle
            nontrivial += int(0 < box.sum() < 64 * 64)
        mixed = labelmix(real, fake, m)
        assert torch.equal(mixed[:, :, box], fake[:, :, box]) and torch.equal(mixed[:, :, ~box], real[:, :, ~box])
        target = mixed_n_plus_one_target(label, m)
        assert torch.equal(target[:, box], torch.zeros_like(target[:, box]))  # fake pixels -> class 0
        assert torch.equal(target[:, ~box], idx[:, ~box] + 1)               # real pixels keep class c + 1
    assert nontrivial >= 5
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(cutmix_mask(label, generator=g1), cutmix_mask(label, generator=g2))
    per = cutmix_mask(label.repeat(8, 1, 1, 1), per_image=True, generator=torch.Generator().manual_seed(0))
    assert not all(torch.equal(per[0], per[i]) for i in range(1, 16))
    # LabelMix masks follow the classes instead: the N+1 target is then constant on every class region
    lm = labelmix_mask(label, generator=torch.Generator().manual_seed(1))
    t = mixed_n_plus_one_target(label, lm)
    for c in (1, 2, 3):
        assert t[idx == c].unique().numel() == 1


def test_vgg_loss_zero_for_identical_and_positive_otherwise():
    vgg = _vgg_loss()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    assert vgg(x, x).item() == 0.0
    assert vgg(x, y).item() > 0
    feats = vgg.vgg(x)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    assert not any(p.requires_grad for p in vgg.parameters())
    xg = x.clone().requires_grad_(True)
    vgg(xg, y).backward()
    assert xg.grad.abs().sum() > 0  # gradients reach the generated image


def test_vgg_weights_load_from_local_torchvision_file(tmp_path):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ref = tv.models.vgg.make_layers(tv.models.vgg.cfgs["E"])  # torchvision's vgg19 ``features`` (random)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch_save({f"features.{k}": v for k, v in ref.state_dict().items()}, path)
    ours = VGG19Features(path)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x)[3], ref[:21](x), atol=1e-5)  # relu4_1
        assert torch.allclose(ours(x)[4], ref[:30](x), atol=1e-5)  # relu5_1
    with pytest.raises(MissingResourceError, match="fetch_tv_vgg19"):
        VGG19Features(tmp_path / "absent.pth")
    torch_save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth"):
        VGG19Features(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pth"):
        VGG19Features(tmp_path / "junk.pth")


# --- config / outputs ----------------------------------------------------------------------------------
def test_config_defaults_presets_and_roundtrip():
    c = SemanticGANConfig()
    assert (c.generator, c.discriminator, c.d_label_encoding, c.mixing, c.vgg_loss, c.feature_matching) == \
        ("oasis", "oasis_unet", "n_plus_1_balanced", "labelmix", False, False)
    assert (c.adversarial_loss, c.class_balancing, c.lambda_vgg, c.lambda_fm) == ("n_plus_1", "eq4.3", 10.0, 10.0)
    sp = SemanticGANConfig.spade_plus("cityscapes")
    assert (sp.generator, sp.discriminator, sp.d_label_encoding, sp.adversarial_loss) == \
        ("spade_plus", "ms_patchgan", "concat", "hinge")
    assert (sp.vgg_loss, sp.feature_matching, sp.mixing, sp.ema_decay) == (True, False, "none", 0.9999)
    assert sp.spade.output_size == sp.oasis.output_size == (256, 512)
    assert SemanticGANConfig.spade_plus(vgg_loss=False).vgg_loss is False
    s = SPADEConfig()
    assert (s.ngf, s.lr_g, s.lr_d, s.betas, s.num_upsampling_layers) == (64, 1e-4, 4e-4, (0.0, 0.9), "normal")
    rt = SemanticGANConfig.from_dict(sp.to_dict())
    assert rt == sp and isinstance(rt.oasis, OASISConfig) and isinstance(rt.spade, SPADEConfig)
    coco = SemanticGANConfig.from_dict({"discriminator": "patchgan", "oasis": {"dataset": "coco"}})
    assert coco.oasis.semantic_nc == 183
    for bad in ({"discriminator": "stylegan"}, {"d_label_encoding": "onehot"}, {"mixing": "mixup"},
                {"lambda_vgg": -1}, {"vgg": True}):
        with pytest.raises(ConfigError):
            SemanticGANConfig.from_dict(bad)
    with pytest.raises(ConfigError):
        SPADEConfig(num_upsampling_layers="most")
    with pytest.raises(ConfigError):
        SPADEConfig(dataset="lvis")  # semantic_nc must be given


def test_doutput_split_and_label_check():
    d = build_discriminator(_cfg(discriminator="ms_patchgan"), N)
    label, _ = _label(b=2)
    both = d(torch.randn(4, 3, 64, 64), torch.cat([label, label]))
    first, rest = both.split(2)
    assert first.logits[1].shape[0] == 2 and rest.features[0][2].shape[0] == 2
    assert torch.equal(rest.logits[0], both.logits[0][2:])
    with pytest.raises(ValueError, match="one-hot"):
        d(torch.randn(2, 3, 64, 64), label[:, :3])
    assert isinstance(d, SemanticDiscriminator) and isinstance(d.nets, nn.ModuleList)
