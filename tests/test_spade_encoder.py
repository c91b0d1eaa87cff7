"""SPADE+ with SPADE's image encoder (VAE), the "SPADE+, Encoder" row of thesis Table 4.2: encoder shapes and
parameter count against a hand count, the KLD against its closed form, training through OASISTrainer (KLD term,
G's optimiser trains the encoder), exact resume, seeded multi-modal sampling, and the config checks."""
import json
import math

import pytest
import torch

from gan_core.config import deep_merge
from gan_core.data.semantic import SemanticDataConfig, SemanticDataset, one_hot
from gan_core.errors import ConfigError
from gan_core.losses.spade import kld_loss
from gan_core.nets.oasis import count_parameters
from gan_core.nets.semantic_gan_factory import SemanticGANConfig
from gan_core.nets.spade import SPADEGenerator
from gan_core.nets.spade_config import SPADEConfig
from gan_core.nets.spade_encoder import ConvImageEncoder, reparameterize
from gan_core.train.loop import LoopConfig, run_training, seed_everything
from gan_core.train.oasis_cli import main as oasis_main
from gan_core.train.oasis_cli import parse_params
from gan_core.train.oasis_trainer import OASISRunConfig, OASISTrainer, generate_for_labels
from kill_resume import train_until_killed

pytestmark = pytest.mark.usefixtures("one_thread")

# the variant line of config.yaml (spade_plus_encoder) on top of a tiny model
VARIANT = {"gan_preset": "spade_plus", "spade": {"encoder": True}}
SMALL = dict(semantic_nc=7, crop_size=32, ch_G=2, z_dim=8, spade_hidden=8, d_channels=[8, 8, 16, 16],
             d_last_channels=8, batch_size=2, ndf=4,
             spade={"ngf": 2, "spade_hidden": 8, "encoder_size": 32, "encoder_z_dim": 16})


@pytest.fixture(scope="module")
def ade_root(ade_root_small):
    return ade_root_small


def make(root, overrides=None, seed=0):
    gan, _ = parse_params(json.dumps(deep_merge(deep_merge(SMALL, VARIANT), overrides or {})))
    data = SemanticDataset(root, "train", SemanticDataConfig(semantic_nc=7, size=gan.oasis.output_size))
    seed_everything(seed)
    return OASISTrainer(gan, data, OASISRunConfig(bn_refresh_batches=1), seed=seed)


def _hand_count(convs, ndf8, z_dim):
    """3x3 convs without bias (SN keeps one weight_orig; instance norm has no parameters) + fc_mu + fc_var."""
    return sum(9 * cin * cout for cin, cout in convs) + 2 * (ndf8 * 4 * 4 * z_dim + z_dim)


def test_encoder_layers_shapes_and_parameter_count():
    # SPADE's encoder at ngf 64, crop >= 256: 3->64->128->256->512->512->512, fc 512*4*4 -> 256 (x2)
    enc = ConvImageEncoder(ndf=64, z_dim=256, input_size=256)
    convs = [(3, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512)]
    assert count_parameters(enc) == _hand_count(convs, 512, 256) == 10_463_424
    keys = set(enc.state_dict())
    assert {"layer1.0.weight_orig", "layer6.0.weight_u", "fc_mu.weight", "fc_var.bias"} <= keys
    assert not any(k.startswith("layer") and k.endswith(".bias") for k in keys)  # bias removed before the norm
    assert "layer7.0.weight_orig" not in keys
    assert enc.layer2[0].stride == (2, 2) and enc.layer2[0].kernel_size == (3, 3)
    # a tiny one: 32 -> 4 in 3 stride-2 convs; any input size / aspect is resized first
    small = ConvImageEncoder(ndf=4, z_dim=16, input_size=32)
    assert count_parameters(small) == _hand_count([(3, 4), (4, 8), (8, 16)], 16, 16)
    mu, logvar = small(torch.randn(3, 3, 24, 48))
    assert mu.shape == logvar.shape == (3, 16)
    with pytest.raises(ValueError, match="power of 2"):
        ConvImageEncoder(4, 16, 48)
    with pytest.raises(ConfigError, match="encoder_size"):
        SPADEConfig(encoder=True, encoder_size=100)


def test_kld_closed_form_and_reparameterisation():
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [math.log(0.25), 0.0]])
    # per element 0.5 * (mu^2 + var - 1 - log var): 0.5, 0.5 (3 - ln 4), 0.5 (ln 4 - 0.75), 2 -> 3.625
    assert kld_loss(mu, logvar).item() == pytest.approx(3.625, abs=1e-6)
    # and summed (not averaged) over batch and dimensions: equals torch's KL of the diagonal Gaussians
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2))
    assert kld_loss(mu, logvar).item() == pytest.approx(torch.distributions.kl_divergence(q, p).sum().item())
    assert kld_loss(torch.zeros(5, 7), torch.zeros(5, 7)).item() == 0.0
    m, lv = torch.full((20000, 1), 3.0), torch.full((20000, 1), math.log(4.0))
    z = reparameterize(m, lv, torch.Generator().manual_seed(1))
    assert z.mean().item() == pytest.approx(3.0, abs=0.05) and z.std().item() == pytest.approx(2.0, abs=0.05)
    assert torch.equal(z, reparameterize(m, lv, torch.Generator().manual_seed(1)))


def _tiny_spade(**kw):
    return SPADEConfig(semantic_nc=7, crop_size=32, ngf=2, spade_hidden=8, encoder_size=32, encoder_z_dim=16, **kw)


def test_generator_with_encoder_uses_the_image_or_the_prior():
    torch.manual_seed(0)
    g = SPADEGenerator(_tiny_spade(encoder=True)).eval()
    assert isinstance(g.fc, torch.nn.Linear) and g.fc.in_features == 16 and g.fc.out_features == 16 * 2 * 1 * 1
    assert g.head_0.norm_0.mlp_shared[0].in_channels == 7  # SPADE layers see the label map only
    lab = one_hot(torch.randint(0, 7, (2, 32, 32)), 7)
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    gen = lambda s: torch.Generator().manual_seed(s)
    a, mu, logvar = g(lab, image=img, generator=gen(0), return_posterior=True)
    assert a.shape == (2, 3, 32, 32) and mu.shape == logvar.shape == (2, 16)
    assert torch.equal(a, g(lab, image=img, generator=gen(0)))          # same image, same eps -> same output
    mu2, _ = g.encoder(img.flip(0))
    assert not torch.allclose(mu, mu2)                                  # the posterior depends on the image
    # the encoder's z drives the output: z = mu + eps * std with the seeded eps, fed to fc
    z = reparameterize(mu, logvar, gen(0))
    assert torch.allclose(a, g(lab, z=z), atol=1e-6)
    # test time: z ~ N(0, I) from the seeded generator
    p0, p0b, p1 = g(lab, generator=gen(3)), g(lab, generator=gen(3)), g(lab, generator=gen(4))
    assert torch.equal(p0, p0b) and (p0 - p1).abs().mean() > 0.01 * p0.abs().mean()
    out, z_used, m_none, lv_none = g(lab, generator=gen(3), return_noise=True, return_posterior=True)
    assert z_used.shape == (2, 16) and m_none is None and lv_none is None
    with pytest.raises(ValueError, match="noise_mode"):
        g(lab, noise_mode="region")
    with pytest.raises(ValueError, match="no image encoder"):
        SPADEGenerator(_tiny_spade())(lab, image=img)


def test_config_checks():
    with pytest.raises(ConfigError, match="noise_3d"):
        _tiny_spade(encoder=True, noise_3d=True)
    spade = SPADEConfig(encoder=True)  # ADE20K at 256 (configs only, nothing is built)
    with pytest.raises(ConfigError, match="spade_plus"):
        SemanticGANConfig(spade=spade)                                   # the OASIS G has no image encoder
    with pytest.raises(ConfigError, match="noise_sampling"):
        SemanticGANConfig.spade_plus(spade=spade, noise_sampling="region")
    gan, _ = parse_params(json.dumps(deep_merge(SMALL, VARIANT)))
    assert gan.uses_encoder and gan.spade.lambda_kld == 0.05 and gan.vgg_loss  # "Encoder, with VGG" row
    assert SPADEConfig().encoder is False and SPADEConfig().encoder_z_dim == 256


def test_trains_through_the_oasis_trainer(ade_root):
    tr = make(ade_root)
    enc_params = {id(p) for p in tr.G.encoder.parameters()}
    in_opt = {id(p) for group in tr.opt_G.param_groups for p in group["params"]}
    assert enc_params and enc_params <= in_opt                         # SPADE: G_params += netE params
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    ema0 = tr.G_ema.state_dict()["encoder.fc_mu.weight"].clone()
    calls = []
    hook = tr.G.register_forward_pre_hook(lambda m, args, kw: calls.append(kw.get("image")), with_kwargs=True)
    logs = [tr.train_step(i) for i in range(2)]
    hook.remove()
    # G and D steps both encode the batch's REAL images (SPADE generate_fake in both loss computations)
    assert len(calls) == 4 and all(c is not None and c.shape == (2, 3, 32, 32) for c in calls)
    assert torch.equal(calls[0], calls[1]) and torch.equal(calls[0], tr._batch(0)[0])
    for row in logs:
        assert {"G_adv", "G_vgg", "G_kld", "G_total", "D_real", "D_fake"} <= set(row)
        assert all(math.isfinite(v) for v in row.values()), row
        assert row["G_kld"] > 0
        assert row["G_total"] == pytest.approx(row["G_adv"] + row["G_vgg"] + row["G_kld"], rel=1e-5)
    after = tr.G.state_dict()
    assert not torch.equal(after["encoder.fc_mu.weight"], before["encoder.fc_mu.weight"])  # the encoder trains
    assert not torch.equal(after["encoder.layer1.0.weight_orig"], before["encoder.layer1.0.weight_orig"])
    assert not torch.equal(tr.G_ema.state_dict()["encoder.fc_mu.weight"], ema0)             # EMA covers it
    assert tr.refreshed_ema().training is False
    # lambda_kld is a config value: doubling it doubles the first step's term (same init, same batch)
    tr2 = make(ade_root, {"spade": {"lambda_kld": 0.1}})
    assert tr2.train_step(0)["G_kld"] == pytest.approx(2 * logs[0]["G_kld"], rel=1e-5)
    with pytest.raises(ConfigError, match="noise_mode"):  # test-time z is one vector per image
        OASISTrainer(tr.gan, tr.data, OASISRunConfig(noise_mode="region"))


def _state(tr):
    return {**{f"G.{k}": v for k, v in tr.G.state_dict().items()},
            **{f"D.{k}": v for k, v in tr.D.state_dict().items()},
            **{f"E.{k}": v for k, v in tr.G_ema.state_dict().items()},
            **{f"oG.{i}": s["exp_avg"] for i, s in tr.opt_G.state_dict()["state"].items()}}


def test_killed_and_resumed_run_equals_uninterrupted(ade_root, tmp_path):
    """As tests/test_oasis_trainer.py: 5 iterations over 3 epochs (2 batches/epoch), checkpoint every 2, killed
    at iteration 3; the resumed run's G (encoder included), D, EMA, Adam state and log equal the full run's."""
    loop = LoopConfig(iterations=5, checkpoint_every=2, log_every=1, progress=False)
    full = make(ade_root)
    run_training(full, tmp_path / "full", loop)
    killed = make(ade_root)
    train_until_killed(killed, tmp_path / "resumed", loop, kill_at=3)
    resumed = make(ade_root)
    with torch.no_grad():  # the state must come from the checkpoint, not from the seeded init
        for p in resumed.G.encoder.parameters():
            p.add_(1.0)
    assert run_training(resumed, tmp_path / "resumed", loop) == 3
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and any(k.startswith("G.encoder.") for k in a)
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    rows = lambda d: [{k: v for k, v in json.loads(l).items() if k != "elapsed_s"}
                      for l in (d / "train_log.jsonl").read_text().splitlines()]
    assert rows(tmp_path / "full") == rows(tmp_path / "resumed")
    assert all("G_kld" in r for r in rows(tmp_path / "full"))


def test_cli_train_and_seeded_multi_modal_sampling(ade_root, tmp_path):
    params = json.dumps(deep_merge(deep_merge(SMALL, VARIANT), {"iterations": 1, "checkpoint_every": 1,
                                                                 "log_every": 1, "bn_refresh_batches": 1}))
    run = tmp_path / "run"
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(run), "--params", params,
                       "--device", "cpu", "--vgg-weights", "none"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["gan"]["spade"]["encoder"] is True
    weights = torch.load(run / "generator_ema.pt", weights_only=True)
    assert "encoder.fc_mu.weight" in weights and weights["fc.weight"].dim() == 2
    multi = tmp_path / "multi"
    assert oasis_main(["sample", "--run", str(run), "--dataroot", str(ade_root), "--out", str(multi),
                       "--device", "cpu", "--per-label", "2"]) == 0
    from gan_core.utils.images import read_image

    a = read_image(multi / "images" / "ADE_val_00000001" / "000.png")
    b = read_image(multi / "images" / "ADE_val_00000001" / "001.png")
    assert not (a == b).all()  # z ~ N(0, I) per (seed, key): the samples of one label map differ
    # same (seed, key) -> same image, whatever the batch; different keys -> different images
    from gan_core.train.oasis_cli import load_run

    gen, _, _ = load_run(run, torch.device("cpu"))
    data = SemanticDataset(ade_root, "validation", SemanticDataConfig(semantic_nc=7, size=(32, 32)))
    labels = torch.stack([data[0]["label"]] * 3)
    x = generate_for_labels(gen, labels, [5, 5, 6], seed=0)
    y = generate_for_labels(gen, labels[:1], [5], seed=0)
    assert torch.equal(x[0], x[1]) and torch.equal(x[0], y[0])
    assert (x[0] - x[2]).abs().mean() > 0.01 * x[0].abs().mean()
    assert not torch.equal(generate_for_labels(gen, labels[:1], [5], seed=1)[0], y[0])
