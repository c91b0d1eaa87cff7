"""Chapter-4 ablations through the OASIS trainer (thesis Sec. 4.3.6, appendix B): every models.oasis variant of
config.yaml builds through the SemanticGAN factory and trains 2 iterations at a small size; the default
configuration is still exactly OASIS (parameter counts, official state-dict keys, loss terms); SPADE+ trains
with the hinge and VGG terms."""
import json
from pathlib import Path

import pytest
import torch

from gan_core.config import deep_merge
from gan_core.data.semantic import SemanticDataConfig, SemanticDataset
from gan_core.nets.oasis import OASISDiscriminator, OASISGenerator
from gan_core.nets.oasis_config import OASISConfig
from gan_core.train.loop import seed_everything
from gan_core.train.oasis_cli import main as oasis_main
from gan_core.train.oasis_cli import parse_params
from gan_core.train.oasis_trainer import OASISRunConfig, OASISTrainer

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(semantic_nc=7, crop_size=32, ch_G=2, z_dim=8, spade_hidden=8, d_channels=[8, 8, 16, 16],
             d_last_channels=8, batch_size=2, ndf=4, spade={"ngf": 2, "spade_hidden": 8, "z_dim": 8})


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ade_root(ade_root_small):
    return ade_root_small


def config_variants():
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())["models"]["oasis"]["variants"]


def make(root, overrides, seed=0, vgg_weights=None):
    gan, run = parse_params(json.dumps(deep_merge(SMALL, overrides)))
    data = SemanticDataset(root, "train", SemanticDataConfig(semantic_nc=7, size=gan.oasis.output_size))
    seed_everything(seed)
    run = OASISRunConfig(bn_refresh_batches=1)
    return OASISTrainer(gan, data, run, seed=seed, vgg_weights=vgg_weights)


def test_config_declares_the_chapter_4_variants():
    v = config_variants()
    assert len(v) >= 30 and v["default"] == {}
    assert v["spade_plus"] == {"gan_preset": "spade_plus"}
    for name in ("d_ms_patchgan", "d_patchgan", "d_resnet_patchgan", "enc_concat", "enc_projection", "enc_n_plus_1",
                 "noise_region", "noise_pixel", "noise_mix", "cr_none", "cr_cutmix", "fm", "vgg_fm"):
        assert name in v, name


@pytest.mark.parametrize("variant", sorted(config_variants()))
def test_every_variant_builds_and_trains_two_iterations(ade_root, variant):
    tr = make(ade_root, config_variants()[variant])
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    logs = [tr.train_step(i) for i in range(2)]
    for row in logs:
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values()), (variant, row)
    changed = [k for k, v in tr.G.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, f"{variant}: the generator did not change"
    gan = tr.gan
    assert ("G_vgg" in logs[0]) == gan.vgg_loss and ("G_fm" in logs[0]) == gan.feature_matching
    if gan.mixing == "none":
        assert logs[0]["D_labelmix"] == 0.0
    else:
        assert logs[0]["D_labelmix"] > 0.0
    assert tr.refreshed_ema().training is False


def test_default_is_exactly_oasis(ade_root):
    """Same networks (parameter count, official state-dict keys of G and D) as building OASIS directly, and the
    loss terms of OASIS (no VGG, no FM, LabelMix on)."""
    tr = make(ade_root, {})
    cfg = OASISConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in SMALL.items()
                         if k not in ("ndf", "spade")})
    g_ref, d_ref = OASISGenerator(cfg), OASISDiscriminator(cfg)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(tr.G) == count(g_ref) and count(tr.D) == count(d_ref)
    assert list(tr.G.state_dict()) == list(g_ref.state_dict())
    assert list(tr.D.state_dict()) == list(d_ref.state_dict())  # official keys, no "nets.0." prefix
    assert tr.plain_d and isinstance(tr.D, OASISDiscriminator)
    assert list(tr.state_dict()["D"]) == list(d_ref.state_dict())
    assert tr.loss.vgg is None and not tr.gan.feature_matching
    assert tr.gan.adversarial_loss == "n_plus_1" and tr.gan.class_balancing == "eq4.3"
    assert set(tr.train_step(0)) == {"G_adv", "D_fake", "D_real", "D_labelmix", "D_total"}
    lr_g, lr_d, betas = tr.optimiser_settings(tr.gan)
    assert (lr_g, lr_d, betas) == (1e-4, 4e-4, (0.0, 0.999))  # thesis l.1121


def test_default_oasis_checkpoint_loads_into_the_reference_discriminator(ade_root, tmp_path):
    """The released-checkpoint layout: the trainer's D state dict loads strictly into a bare OASIS D."""
    from gan_core.nets.oasis_checkpoint import load_oasis_state

    tr = make(ade_root, {})
    torch.save(tr.state_dict()["D"], tmp_path / "latest_D.pth")
    cfg = OASISConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in SMALL.items()
                         if k not in ("ndf", "spade")})
    d = load_oasis_state(tmp_path / "latest_D.pth", OASISDiscriminator(cfg))
    assert all(torch.equal(a, b) for a, b in zip(d.state_dict().values(), tr.D.state_dict().values()))


def test_spade_plus_uses_hinge_and_vgg_and_the_spade_optimiser(ade_root):
    tr = make(ade_root, {"gan_preset": "spade_plus"})
    gan = tr.gan
    assert gan.generator == "spade_plus" and gan.discriminator == "ms_patchgan" and gan.d_label_encoding == "concat"
    assert gan.adversarial_loss == "hinge" and gan.vgg_loss and gan.mixing == "none"
    assert not tr.plain_d and tr.D.num_scales == 2
    assert all(k.startswith("nets.") for k in tr.state_dict()["D"])
    logs = tr.train_step(0)
    assert {"G_adv", "G_vgg", "G_total", "D_real", "D_fake", "D_total"} <= set(logs)
    assert logs["G_vgg"] > 0 and logs["D_labelmix"] == 0.0
    assert abs(logs["G_total"] - logs["G_adv"] - logs["G_vgg"]) < 1e-4
    assert tr.optimiser_settings(gan) == (1e-4, 4e-4, (0.0, 0.9))  # SPADE TTUR (reference notes §3)
    # hinge: D_real = mean(relu(1 - D(x))) >= 0 on every scale (a CE term would not be bounded like this)
    assert logs["D_real"] >= 0 and logs["D_fake"] >= 0


def test_random_vgg_does_not_shift_the_initialisation(ade_root):
    a = make(ade_root, {"no_3dnoise": True, "mixing": "none"})
    b = make(ade_root, {"no_3dnoise": True, "mixing": "none", "vgg_loss": True})
    assert all(torch.equal(x, y) for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values()))
    assert b.loss.vgg is not None
    c = make(ade_root, {"no_3dnoise": True, "mixing": "none", "vgg_loss": True})
    assert all(torch.equal(x, y) for x, y in zip(b.loss.vgg.state_dict().values(), c.loss.vgg.state_dict().values()))


def test_bad_switch_and_preset_are_named():
    from gan_core.errors import ConfigError

    with pytest.raises(ConfigError, match="discriminator"):
        parse_params(json.dumps({**SMALL, "discriminator": "stylegan"}))
    with pytest.raises(ConfigError, match="gan_preset"):
        parse_params(json.dumps({**SMALL, "gan_preset": "spade"}))


def test_cli_spade_plus_run_and_multi_sample(ade_root, tmp_path):
    """CLI round trip of an ablation run: config.json records the switches and the VGG weights label; sample
    --per-label K writes K images per label map in one folder per map, sample 0 = the single-sample image."""
    params = json.dumps(deep_merge(SMALL, {"gan_preset": "spade_plus", "spade": {"noise_3d": True},
                                           "iterations": 1, "checkpoint_every": 1, "log_every": 1,
                                           "bn_refresh_batches": 1}))
    run = tmp_path / "run"
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(run), "--params", params,
                       "--device", "cpu", "--vgg-weights", "none"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["gan"]["generator"] == "spade_plus" and cfg["gan"]["spade"]["noise_3d"] is True
    assert cfg["vgg_weights"].startswith("random")
    one, multi = tmp_path / "one", tmp_path / "multi"
    assert oasis_main(["sample", "--run", str(run), "--dataroot", str(ade_root), "--out", str(one),
                       "--device", "cpu"]) == 0
    assert oasis_main(["sample", "--run", str(run), "--dataroot", str(ade_root), "--out", str(multi),
                       "--device", "cpu", "--per-label", "3"]) == 0
    groups = sorted(p for p in (multi / "images").iterdir())
    assert [g.name for g in groups] == ["ADE_val_00000001", "ADE_val_00000002"]
    assert all(len(list(g.iterdir())) == 3 for g in groups)
    from gan_core.utils.images import read_image

    a = read_image(multi / "images" / "ADE_val_00000001" / "000.png")
    b = read_image(one / "images" / "ADE_val_00000001.png")
    assert (a == b).all()
    c = read_image(multi / "images" / "ADE_val_00000001" / "001.png")
    assert not (a == c).all()  # 3D noise in the SPADE+ G: samples of one map differ
    # a missing VGG file is an error naming it
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(tmp_path / "x"), "--params", params,
                       "--vgg-weights", str(tmp_path / "nope.pth")]) == 2
