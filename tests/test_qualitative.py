"""Qualitative figures (gan_core.report.qualitative): sample grid and latent interpolation strip of a tiny
OSMIS run and a tiny SIV-GAN run, each trained for one iteration through the real ``osmis_cli train``."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.report import qualitative as q
from gan_core.sample.generate import generate, to_uint8
from gan_core.train import osmis_cli
from gan_core.utils.images import write_mask

TINY = dict(ch_G=4, ch_D=4, batch_size=1, bernoulli_warmup=3, iterations=1, checkpoint_every=1, log_every=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("qual")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    mask = np.zeros((48, 80), np.int64)
    mask[10:30, 10:40] = 1
    mask[30:, 50:] = 2
    Image.fromarray(img).save(d / "frame.png")
    write_mask(d / "mask.png", mask)
    out = {}
    for name, extra in (("osmis", ["--mask", str(d / "mask.png")]), ("sivgan", [])):
        rc = osmis_cli.main(["train", "--image", str(d / "frame.png"), *extra, "--out", str(d / name),
                             "--params", json.dumps(TINY), "--seed", "0", "--device", "cpu"])
        assert rc == 0
        out[name] = d / name
    out["image"], out["mask"], out["dir"] = d / "frame.png", d / "mask.png", d
    return out


def test_interpolate_latents_endpoints_and_paths():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, 1, 1, generator=g), torch.randn(64, 1, 1, generator=g)
    for method in ("slerp", "linear"):
        z = q.interpolate_latents(z0, z1, 5, method)
        assert z.shape == (5, 64, 1, 1) and torch.equal(z[0], z0) and torch.equal(z[-1], z1)
    lin = q.interpolate_latents(z0, z1, 3, "linear")
    torch.testing.assert_close(lin[1], (z0 + z1) / 2)
    # slerp between orthogonal unit vectors stays on the unit circle (linear dips to 1/sqrt(2))
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    s = q.interpolate_latents(a, b, 5, "slerp")
    torch.testing.assert_close(s.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(s[2], torch.tensor([1.0, 1.0]) / 2 ** 0.5)
    assert q.interpolate_latents(a, b, 3, "linear")[1].norm() < 0.75
    with pytest.raises(Exception, match="steps"):
        q.interpolate_latents(a, b, 1)
    with pytest.raises(Exception, match="method"):
        q.interpolate_latents(a, b, 3, "cubic")


@pytest.mark.parametrize("name", ["osmis", "sivgan"])
def test_interpolation_endpoints_are_the_generator_outputs(runs, name):
    gen, _ = q.load_run(runs[name])
    images, masks, z = q.interpolation(gen, seed=5, steps=6, method="slerp")
    assert images.shape == (6, 3, 48, 80) and (masks is None) == (name == "sivgan")
    z0, z1 = q.endpoint_noises(gen.noise_dim, 5)
    with torch.no_grad():
        out = gen(torch.stack([z0, z1]), features=False)
    torch.testing.assert_close(images[0], out.images[-1][0].clamp(-1, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(images[-1], out.images[-1][1].clamp(-1, 1), atol=1e-5, rtol=0)
    if masks is not None:
        assert torch.equal(masks[0], out.masks[0].argmax(0)) and torch.equal(masks[-1], out.masks[1].argmax(0))
    # the endpoints are samples 0 and 1 of ``osmis_cli sample --seed 5``
    ref, _ = generate(gen, 4, 5)
    torch.testing.assert_close(images[[0, -1]], ref[:2], atol=1e-5, rtol=0)
    # the inner points really differ from the endpoints
    assert (images[3] - images[0]).abs().max() > 0


def test_grid_cli_dimensions_and_panels(runs, tmp_path):
    out = tmp_path / "grid.png"
    rc = q.main(["grid", "--run", str(runs["osmis"]), "--out", str(out), "--n", "5", "--cols", "3", "--seed", "2",
                 "--scale", "2", "--device", "cpu"])
    assert rc == 0
    png = np.asarray(Image.open(out).convert("RGB"))
    # 2 sample rows x (image row + overlay row); 1 training column + 3 sample columns
    assert png.shape[:2] == q.mosaic_size(4, 4, (48, 80), scale=2)
    gen, _ = q.load_run(runs["osmis"])
    samples = to_uint8(generate(gen, 5, 2)[0])
    ph, pw = 96, 160

    def panel(r, c):
        y, x = q.HEADER + q.PAD + r * (ph + q.PAD), q.PAD + c * (pw + q.PAD)
        return png[y:y + ph, x:x + pw]

    up = lambda a: a.repeat(2, 0).repeat(2, 1)  # noqa: E731
    assert np.array_equal(panel(0, 1), up(samples[0]))      # first sample, first row
    assert np.array_equal(panel(2, 2), up(samples[4]))      # fifth sample: second image row, second column
    train = np.asarray(Image.open(runs["image"]))
    assert np.array_equal(panel(0, 0), up(train))           # the training image (already at 48x80)
    assert not np.array_equal(panel(1, 0), up(train))       # its overlay row shows the mask


def test_interpolate_cli_sivgan_dimensions(runs, tmp_path):
    out = tmp_path / "interp.png"
    assert q.main(["interpolate", "--run", str(runs["sivgan"]), "--out", str(out), "--steps", "7",
                   "--method", "linear", "--device", "cpu"]) == 0
    assert Image.open(out).size[::-1] == q.mosaic_size(1, 7, (48, 80))   # no mask row for SIV-GAN
    out2 = tmp_path / "interp_osmis.png"
    assert q.main(["interpolate", "--run", str(runs["osmis"]), "--out", str(out2), "--steps", "3"]) == 0
    assert Image.open(out2).size[::-1] == q.mosaic_size(2, 3, (48, 80))  # image row + overlay row


def test_missing_training_image_and_missing_run(runs, tmp_path, caplog, capsys):
    moved = tmp_path / "run"
    moved.mkdir()
    resolved = json.loads((runs["sivgan"] / "config.json").read_text())
    resolved["image"] = str(tmp_path / "gone.png")
    (moved / "config.json").write_text(json.dumps(resolved))
    (moved / "generator_ema.pt").write_bytes((runs["sivgan"] / "generator_ema.pt").read_bytes())
    with caplog.at_level(logging.WARNING):
        assert q.main(["grid", "--run", str(moved), "--out", str(tmp_path / "g.png"), "--n", "2"]) == 0
    assert "gone.png" in caplog.text
    assert Image.open(tmp_path / "g.png").size[::-1] == q.mosaic_size(1, 3, (48, 80))
    capsys.readouterr()
    assert q.main(["grid", "--run", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")]) == 2
    assert "config.json" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
