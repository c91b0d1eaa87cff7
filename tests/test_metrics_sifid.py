"""SIFID Inception blocks, per-sample SIFID, rank filtering and the filter CLI (random weights only)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from gan_core.errors import DataError, MissingResourceError
from gan_core.metrics.filtering import n_dropped, rank_filter
from gan_core.metrics.frechet import frechet_from_features
from gan_core.metrics.inception import SIFIDInception, block_output_sizes
from gan_core.metrics.sifid import _positions, mean_and_best, sifid_per_sample, target_size
from gan_core.metrics.sifid_cli import main as cli_main
from gan_core.utils.images import write_image, write_mask


@pytest.fixture(scope="module")
def net() -> SIFIDInception:
    torch.set_num_threads(2)
    return SIFIDInception.from_weights(None, seed=0)


def smooth_image(size: tuple[int, int], seed: int) -> torch.Tensor:
    """A (1, 3, H, W) image in [-1, 1] with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=g) * 2 - 1
    fine = torch.rand(1, 3, size[0], size[1], generator=g) * 2 - 1
    img = 0.8 * F.interpolate(coarse, size=size, mode="bicubic", align_corners=False) + 0.2 * fine
    return img.clamp(-1, 1)


# ----------------------------------------------------------------------------- network


def test_block_shapes_at_256(net):
    feats = net(torch.zeros(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 125, 125), (192, 60, 60), (768, 14, 14), (2048, 6, 6)]
    assert block_output_sizes(256, 256) == [(125, 125), (60, 60), (14, 14), (6, 6)]
    # reference notes metrics.md §2.2: OSMIS DAVIS size 384x640
    assert block_output_sizes(384, 640) == [(189, 317), (92, 156), (22, 38), (10, 18)]


def test_strict_load_of_torchvision_state_dict_and_same_features(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.inception_v3(weights=None, init_weights=False).eval()  # aux_logits=True like the file
    path = tmp_path / "tv_inception.pth"
    torch.save(tv.state_dict(), path)
    ours = SIFIDInception.from_weights(path)
    assert ours.weights_label == "imagenet"
    assert set(ours.state_dict()) == set(tv.state_dict())
    # Same features as torchvision's own modules, read with forward hooks (transform_input off).
    grabbed = {}
    names = ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_6e", "Mixed_7c")
    for name in names:
        getattr(tv, name).register_forward_hook(lambda m, i, o, n=name: grabbed.__setitem__(n, o))
    x = smooth_image((160, 160), 1)
    with torch.no_grad():
        tv.transform_input = False
        tv(x)
        feats = ours(x)
    for name, f in zip(names, feats):
        torch.testing.assert_close(f, grabbed[name], rtol=1e-5, atol=1e-5)


def test_random_init_is_seeded():
    a, b, c = (SIFIDInception.from_weights(None, seed=s) for s in (3, 3, 4))
    assert a.weights_label == "random-init(seed=3)"
    wa, wb, wc = (m.Mixed_7c.branch_pool.conv.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert not any(p.requires_grad for p in a.parameters())


# ----------------------------------------------------------------------------- SIFID


def test_positions_layout_and_channel_shift():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    pos = _positions(feat)
    assert pos.shape == (2, 12, 5)
    assert torch.equal(pos[1, 2 * 4 + 3], feat[1, :, 2, 3])  # position (i, j) -> row i*w + j
    shift = torch.tensor([0.0, 0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    shifted = _positions(feat + shift.view(1, 5, 1, 1))
    fd = frechet_from_features(pos.reshape(-1, 5), shifted.reshape(-1, 5))
    assert fd == pytest.approx(float((shift**2).sum()), rel=1e-9)  # 5.3125


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # scipy sqrtm on dead random-init channels
def test_sifid_identity_and_colour_shift(net):
    real = smooth_image((112, 112), 2)
    shifted = real.clone()
    shifted[:, 0] = (shifted[:, 0] + 0.4).clamp(-1, 1)  # redder copy
    fakes = torch.cat([real, shifted])
    v = sifid_per_sample(fakes, real, net, layers=(0, 1, 2, 3), batch_size=2)
    assert v.shape == (2, 4)
    assert np.all(np.abs(v[0]) < 1e-6 * np.maximum(v[1], 1e-12) + 1e-9)
    assert np.all(v[1] > 100 * np.abs(v[0]))
    assert np.all(v[1] > 0)
    # batch size and the exact route do not change the values (scipy sqrtm on the full-rank
    # 192-d layer; it is inaccurate on the singular 768/2048-d covariances of a 112 px image)
    v1 = sifid_per_sample(shifted, real, net, layers=(1,), batch_size=1, method="sqrtm")
    np.testing.assert_allclose(v1[0], v[1, 1:2], rtol=1e-6)
    v2 = sifid_per_sample(shifted, real, net, layers=(2,), batch_size=1, method="eigh")
    np.testing.assert_allclose(v2[0], v[1, 2:3], rtol=1e-6)


def test_real_modes_and_real_resize(net):
    fake = smooth_image((80, 96), 3)
    real_a, real_b = smooth_image((80, 96), 4), smooth_image((80, 96), 5)
    layers = (0, 1)
    first = sifid_per_sample(fake, torch.cat([real_a, real_b]), net, layers=layers, real_mode="first")
    only_a = sifid_per_sample(fake, real_a, net, layers=layers)
    np.testing.assert_allclose(first, only_a, rtol=1e-10)
    pooled = sifid_per_sample(fake, torch.cat([real_a, real_b]), net, layers=layers, real_mode="all")
    with torch.no_grad():
        fr, fa, fb = (net(x, upto=1) for x in (fake, real_a, real_b))
    for j in layers:
        c = fr[j].shape[1]
        reals = torch.cat([_positions(fa[j]).reshape(-1, c), _positions(fb[j]).reshape(-1, c)])
        expected = frechet_from_features(reals, _positions(fr[j]).reshape(-1, c))
        assert pooled[0, j] == pytest.approx(expected, rel=1e-6)
    # a real image of another size is resized (bilinear) to the fake size
    big = F.interpolate(real_a, size=(160, 192), mode="bilinear", align_corners=False)
    resized = F.interpolate(big, size=(80, 96), mode="bilinear", align_corners=False, antialias=True)
    np.testing.assert_allclose(
        sifid_per_sample(fake, big, net, layers=layers), sifid_per_sample(fake, resized, net, layers=layers), rtol=1e-6
    )


def test_too_small_images_and_min_side(net):
    tiny = smooth_image((64, 64), 6)
    with pytest.raises(ValueError, match="min_side"):
        sifid_per_sample(tiny, tiny, net, layers=(3,))
    assert target_size(64, 96, 112) == (112, 168)
    v = sifid_per_sample(tiny, tiny, net, layers=(3,), min_side=112)
    assert v.shape == (1, 1) and abs(v[0, 0]) < 1e-6
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        sifid_per_sample(tiny * 255, tiny, net, layers=(0,))


def test_mean_and_best():
    mean, best = mean_and_best(np.array([[1.0, 4.0], [3.0, 2.0], [2.0, 6.0]]))
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(best, [1.0, 2.0])


# ----------------------------------------------------------------------------- filtering


def test_rank_filter_with_ties():
    table = np.array(
        [
            [0.1, 0.3],  # ranks 1,   3 -> 2.0
            [0.5, 0.1],  # ranks 3.5, 1 -> 2.25
            [0.5, 0.8],  # ranks 3.5, 4 -> 3.75
            [0.9, 0.2],  # ranks 5,   2 -> 3.5
            [0.2, 0.9],  # ranks 2,   5 -> 3.5
        ]
    )
    res = rank_filter(table, drop_fraction=0.4, layers=(0, 1))
    np.testing.assert_allclose(res.mean_rank, [2.0, 2.25, 3.75, 3.5, 3.5])
    # drop 2: the worst (index 2), then of the tied 3 and 4 the higher index
    assert res.rejected_indices.tolist() == [2, 4]
    assert res.kept_indices.tolist() == [0, 1, 3]
    only_first = rank_filter(table, drop_fraction=0.2, layers=(0,))
    assert only_first.rejected_indices.tolist() == [3]
    none = rank_filter(table, drop_fraction=0.0, layers=(0, 1))
    assert none.kept_indices.tolist() == [0, 1, 2, 3, 4] and none.rejected_indices.size == 0


def test_rank_filter_all_tied_and_table_6_8_counts():
    table = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])
    res = rank_filter(table, drop_fraction=0.25, layers=(0, 1))
    assert np.all(res.mean_rank == 2.5) and res.rejected_indices.tolist() == [3]
    # N = 100: 5/10/15/25/50 % drop exactly 5/10/15/25/50; rounding is half up
    assert [n_dropped(100, f) for f in (0.05, 0.10, 0.15, 0.25, 0.50)] == [5, 10, 15, 25, 50]
    assert n_dropped(12, 0.15) == 2 and n_dropped(5, 0.5) == 3 and n_dropped(10, 0.05) == 1
    rng = np.random.default_rng(0)
    scores = rng.random((100, 4))
    res = rank_filter(scores, 0.15)
    assert len(res.kept_indices) == 85
    worst = np.argsort(scores.argsort(0).argsort(0).mean(1))[-15:]  # independent ranking (no ties here)
    assert sorted(worst.tolist()) == res.rejected_indices.tolist()


def test_rank_filter_errors():
    with pytest.raises(ValueError, match="non-finite"):
        rank_filter(np.array([[1.0], [np.nan]]), 0.5, layers=(0,))
    with pytest.raises(ValueError, match="column"):
        rank_filter(np.zeros((3, 1)), 0.1, layers=(0, 1))
    with pytest.raises(ValueError, match="drop_fraction"):
        rank_filter(np.zeros((3, 1)), 1.0, layers=(0,))


# ----------------------------------------------------------------------------- CLI


def make_pool(root: Path, n: int = 6, size=(64, 64)) -> tuple[Path, Path]:
    real = (smooth_image(size, 10)[0].permute(1, 2, 0).numpy() + 1) * 127.5
    write_image(root / "real.png", real.round().astype(np.uint8))
    samples = root / "samples"
    rng = np.random.default_rng(0)
    mask = np.zeros(size, dtype=np.int64)
    mask[16:40, 20:50] = 1
    for i in range(n):
        if i == 3:  # a broken sample: pure noise
            img = rng.integers(0, 256, size=(*size, 3))
        else:
            img = np.clip(real + rng.normal(0, 6, size=(*size, 3)), 0, 255)
        write_image(samples / "images" / f"{i:03d}.png", img.astype(np.uint8))
        write_mask(samples / "masks" / f"{i:03d}.png", mask)
    (samples / "samples.json").write_text(json.dumps({"n": n}))
    return samples, root / "real.png"


def test_cli_filter_smoke(tmp_path):
    samples, real = make_pool(tmp_path)
    out = tmp_path / "filtered"
    rc = cli_main(
        ["filter", "--samples", str(samples), "--real", str(real), "--out", str(out), "--layers", "0,1,2,3",
         "--drop-fraction", "0.15", "--weights", "none", "--seed", "0", "--device", "cpu", "--batch-size", "4",
         "--min-side", "112"]
    )
    assert rc == 0
    rows = list(csv.DictReader((out / "sifid.csv").open()))
    assert [r["file"] for r in rows] == [f"images/{i:03d}.png" for i in range(6)]
    assert all(float(r[f"sifid_{k}"]) >= -1e-9 for r in rows for k in (1, 2, 3, 4))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights_label"] == "random-init(seed=0)"
    assert manifest["layers"] == [0, 1, 2, 3] and manifest["drop_fraction"] == 0.15
    assert len(manifest["kept"]) == 5 and len(manifest["rejected"]) == 1  # round(0.9) = 1
    rejected = manifest["rejected"][0]
    assert (out / rejected["image"]).resolve() == (samples / "images" / "003.png").resolve()  # the noise image
    for entry in manifest["kept"]:
        assert (out / entry["image"]).is_file() and (out / entry["mask"]).is_file()
    assert [r["kept"] for r in rows] == ["1", "1", "1", "0", "1", "1"]


def test_cli_errors(tmp_path):
    samples, real = make_pool(tmp_path, n=2)
    args = ["filter", "--samples", str(samples), "--real", str(real), "--out", str(tmp_path / "o"), "--layers", "0"]
    with pytest.raises(MissingResourceError) as err:
        cli_main(args + ["--weights", str(tmp_path / "missing.pth")])
    assert err.value.fetch_target == "fetch_tv_inception_v3"
    assert "fetch_tv_inception_v3" in str(err.value)
    with pytest.raises(MissingResourceError) as err:  # the manifest's file name maps to its own target
        cli_main(args + ["--weights", str(tmp_path / "pt_inception-2015-12-05-6726825d.pth")])
    assert err.value.fetch_target == "fetch_fid_inception"
    write_image(samples / "images" / "001.png", np.zeros((64, 80, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="001.png"):
        cli_main(args + ["--weights", "none"])
