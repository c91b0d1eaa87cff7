"""FID, LPIPS diversity / dist-to-train, pixel diversity, MS-SSIM, intra-LPIPS and the metrics CLI.

Every network runs with seeded random weights (tiny mode); second sources: pytorch-fid's network and
statistics functions, the lpips package's own forward, scikit-image's SSIM, hand-computed values.
"""
from __future__ import annotations

import json
import math
import urllib.request
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core.errors import DataError, MissingResourceError
from gan_core.metrics import fid as fidmod
from gan_core.metrics.cli import main as cli_main
from gan_core.metrics.diversity import (
    MSSSIMConfig, PixelDiversityConfig, mean_pairwise_msssim, ms_ssim_pairs, msssim_diversity, pair_indices,
    pixel_diversity, ssim_pairs,
)
from gan_core.metrics.fid import FIDConfig, FIDInception, FIDStats, fid_between, fid_features, statistics_of_files
from gan_core.metrics.frechet import frechet_distance, frechet_from_features
from gan_core.metrics.image_io import iter_image_batches
from gan_core.metrics.intra_lpips import IntraLPIPSConfig, assign_clusters, intra_lpips
from gan_core.metrics.lpips_metrics import (
    LPIPSConfig, LPIPSDistance, distance_to_train, nearest_train_distances, pairwise_diversity, training_augment,
)
from gan_core.metrics.weights import resolve_weights
from gan_core.utils.images import write_image


def smooth(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) images in [-1, 1] with coarse structure plus fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 5, 5, generator=g) * 2 - 1
    fine = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    return (0.8 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False) + 0.2 * fine).clamp(-1, 1)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x + 1) / 2 * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def fid_net() -> FIDInception:
    torch.set_num_threads(2)
    return FIDInception.from_weights(None, seed=0)


@pytest.fixture(scope="module")
def alex() -> LPIPSDistance:
    return LPIPSDistance.build(LPIPSConfig(net="alex", device="cpu"), None, seed=0)


# ------------------------------------------------------------------------------------------ FID
def test_fid_pipeline_matches_pytorch_fid(fid_net, tmp_path, monkeypatch):
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

    state = fid_net.net.state_dict()
    assert len(state) == 566  # reference notes §2.1: 566 state-dict entries
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: state)
    ref = pfi.InceptionV3([3]).eval()  # pytorch-fid's own network with the same seeded weights

    imgs = to_uint8(smooth(4, 48, seed=1))
    files = []
    for k, im in enumerate(imgs):
        files.append(tmp_path / f"{k}.png")
        write_image(files[-1], im)
    theirs = get_activations([str(f) for f in files], ref, batch_size=4, dims=2048, device="cpu", num_workers=0)
    ours = fid_features(iter_image_batches(files, 4), fid_net, batch_size=4, device="cpu")
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())

    stats = statistics_of_files(files, fid_net, FIDConfig(batch_size=4, device="cpu"), cache_dir=tmp_path / "c")
    np.testing.assert_allclose(stats.mu, theirs.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats.sigma, np.cov(theirs, rowvar=False), rtol=1e-3, atol=1e-6)
    # cache hit: the second call must not run the network
    monkeypatch.setattr(fidmod, "fid_features", lambda *a, **k: pytest.fail("cache not used"))
    again = statistics_of_files(files, fid_net, FIDConfig(batch_size=4), cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again.mu, stats.mu)
    assert again.weights_label == "random-init(seed=0)"

    # Fréchet formula vs pytorch-fid's calculate_frechet_distance (128-d marginals: sqrtm at 2048-d is too slow)
    f2 = theirs[:, ::-1].copy() * 1.1
    d = 128
    m1, s1 = theirs.mean(0)[:d], np.cov(theirs, rowvar=False)[:d, :d]
    m2, s2 = f2.mean(0)[:d], np.cov(f2, rowvar=False)[:d, :d]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        want = calculate_frechet_distance(m1, s1, m2, s2)
    assert frechet_distance(m1, s1, m2, s2, method="auto") == pytest.approx(want, rel=1e-5)


def test_fid_self_zero_shift_positive_and_stats_route(fid_net):
    x = smooth(3, 48, seed=2)
    shifted = (x + torch.tensor([0.4, -0.3, 0.2]).view(1, 3, 1, 1)).clamp(-1, 1)
    cfg = FIDConfig(batch_size=4, device="cpu")
    fx = fid_features(x, fid_net, 4, "cpu")
    stats_x = FIDStats.from_features(fx, fid_net.weights_label)
    scale = float(np.trace(stats_x.sigma))
    # a set against itself: ~0 by the statistics route (n x n eigen-route) and the feature route (SVD)
    assert abs(fidmod.frechet_features_vs_stats(fx, stats_x.mu, stats_x.sigma)) < 1e-6 * scale
    assert abs(frechet_from_features(fx, fx)) < 1e-6 * scale
    # a colour-shifted copy: clearly larger; cached statistics route == image route
    shift_stats = fid_between(shifted, stats_x, fid_net, cfg)
    shift_images = fid_between(shifted, x, fid_net, cfg)
    assert shift_stats > 1e-3 * scale
    assert shift_stats == pytest.approx(shift_images, rel=1e-6)
    with pytest.raises(ValueError, match="recompute"):
        fid_between(x, FIDStats(stats_x.mu, stats_x.sigma, 3, "pt_inception-2015-12-05"), fid_net, cfg)


# ------------------------------------------------------------------------------------------ LPIPS
def test_lpips_identity_symmetry_and_batched_pairs_match_package_loop(alex):
    import lpips

    x = smooth(5, 64, seed=3)
    y = smooth(5, 64, seed=4)
    assert torch.all(alex.distance(x, x) == 0)
    dxy, dyx = alex.distance(x, y), alex.distance(y, x)
    torch.testing.assert_close(dxy, dyx, rtol=1e-6, atol=1e-7)
    assert torch.all(dxy > 0)

    # an independent lpips.LPIPS with the same state, used the package way: one pair per call
    ref = lpips.LPIPS(pretrained=False, net="alex", pnet_rand=True, verbose=False)
    ref.load_state_dict(alex.model.state_dict())
    ref.eval()
    with torch.no_grad():
        naive = [float(ref(x[i : i + 1], x[j : j + 1])) for i in range(5) for j in range(i + 1, 5)]
        cross_naive = [[float(ref(x[i : i + 1], y[j : j + 1])) for j in range(5)] for i in range(2)]
    np.testing.assert_allclose(alex.pairwise(x).numpy(), naive, rtol=1e-5, atol=1e-7)
    assert pairwise_diversity(x, alex) == pytest.approx(np.mean(naive), rel=1e-5)
    np.testing.assert_allclose(alex.cross(x[:2], y).numpy(), cross_naive, rtol=1e-5, atol=1e-7)
    # a seeded subset of pairs is a subset of the full list
    i, j = pair_indices(5, max_pairs=4, seed=1)
    full = dict(zip(zip(*(t.tolist() for t in pair_indices(5))), naive))
    np.testing.assert_allclose(alex.pairwise(x, max_pairs=4, seed=1).numpy(),
                               [full[(int(a), int(b))] for a, b in zip(i, j)], rtol=1e-5)


def test_lpips_official_01_quirk(alex):
    x, y = smooth(3, 64, seed=5), smooth(3, 64, seed=6)
    quirk = LPIPSDistance(alex.model, "x", LPIPSConfig(official_01_quirk=True, device="cpu"))
    with torch.no_grad():  # official SIV-GAN: ToTensor() images in [0, 1] fed with normalize=False
        want = alex.model((x + 1) / 2, (y + 1) / 2, normalize=False).flatten().double()
        correct = alex.model((x + 1) / 2, (y + 1) / 2, normalize=True).flatten().double()
    torch.testing.assert_close(quirk.distance(x, y), want, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(alex.distance(x, y), correct, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(want, correct, rtol=1e-3)
    assert quirk.weights_label.endswith("official-01-quirk")


def test_lpips_trunk_loads_torchvision_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(7)
    sd = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path / "alexnet.pth"
    torch.save(sd, path)
    m = LPIPSDistance.build(LPIPSConfig(device="cpu"), trunk_weights=path)
    assert m.weights_label == "lpips-v0.1-alex+imagenet-trunk"
    torch.testing.assert_close(m.model.net.slice1[0].weight, sd["features.0.weight"])
    torch.testing.assert_close(getattr(m.model.net.slice5, "10").bias, sd["features.10.bias"])
    del sd["features.3.weight"]
    torch.save(sd, path)
    with pytest.raises(DataError, match="features.3.weight"):
        LPIPSDistance.build(LPIPSConfig(device="cpu"), trunk_weights=path)


def test_distance_to_train(alex):
    fakes = smooth(3, 64, seed=8)
    train = torch.cat([fakes[1:2], smooth(1, 64, seed=9)])
    plain = nearest_train_distances(fakes, train, alex)
    assert plain[1] == 0.0  # a fake equal to a training image
    cross = alex.cross(fakes, train)
    torch.testing.assert_close(plain, cross.min(1).values)
    aug = training_augment("siv", 0.7)
    state = torch.get_rng_state()
    a1 = nearest_train_distances(fakes, train, alex, aug, n_aug=2, seed=3)
    a2 = nearest_train_distances(fakes, train, alex, aug, n_aug=2, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    torch.testing.assert_close(a1, a2)  # seeded
    assert torch.all(a1 <= plain + 1e-12)  # the pool contains the originals
    assert distance_to_train(fakes, train, alex) == pytest.approx(float(plain.mean()))


# ------------------------------------------------------------------------------------------ pixel diversity
def test_pixel_diversity_hand_case():
    samples = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])  # per-pixel std (ddof 0) = 0.5
    ref = torch.zeros(3, 8, 8)
    ref[:, :, 4:] = 1.0  # std 0.5
    assert pixel_diversity(samples, ref) == pytest.approx(1.0)
    assert pixel_diversity(samples, ref, PixelDiversityConfig(mode="rgb")) == pytest.approx(1.0)
    # value range does not matter; ddof=1: per-pixel std sqrt(0.5), reference std sqrt(64/63)*0.5
    assert pixel_diversity(samples * 255, ref * 255) == pytest.approx(1.0)
    want = math.sqrt(0.5) / (0.5 * math.sqrt(64 / 63))
    assert pixel_diversity(samples, ref, PixelDiversityConfig(ddof=1)) == pytest.approx(want)
    # gray: luma weights sum to 1, a pure-red flip is weighted 0.299
    red = torch.zeros(2, 3, 8, 8)
    red[1, 0] = 1.0
    assert pixel_diversity(red, ref) == pytest.approx(0.299)
    with pytest.raises(ValueError, match="constant"):
        pixel_diversity(samples, torch.zeros(3, 8, 8))


# ------------------------------------------------------------------------------------------ MS-SSIM / SSIM
def test_msssim_identity_size_check_and_pairs():
    x = smooth(3, 176, seed=10)
    torch.testing.assert_close(ms_ssim_pairs(x, x), torch.ones(3), atol=1e-5, rtol=0)
    small = smooth(3, 64, seed=11)
    with pytest.raises(ValueError, match="161|160"):
        ms_ssim_pairs(small, small)
    cfg = MSSSIMConfig(min_side=161)
    v = mean_pairwise_msssim(small, cfg)
    manual = np.mean([float(ms_ssim_pairs(small[i : i + 1], small[j : j + 1], cfg)) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert v == pytest.approx(manual, rel=1e-6)
    assert 0 < v < 1
    value, per = msssim_diversity([small, small[:2]], cfg)
    assert value == pytest.approx((per[0] + per[1]) / 2) and per[0] == pytest.approx(v)


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    x, y = smooth(1, 64, seed=12), smooth(1, 64, seed=13)
    ours = float(ssim_pairs(x, y))
    a = ((x[0] + 1) / 2).permute(1, 2, 0).double().numpy()
    b = ((y[0] + 1) / 2).permute(1, 2, 0).double().numpy()
    ref = structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ours == pytest.approx(ref, abs=1e-4)


# ------------------------------------------------------------------------------------------ intra-LPIPS
class L2Stub:
    """Mean squared difference as a stand-in distance (same interface as LPIPSDistance)."""

    def cross(self, a, b):
        return torch.cdist(a.flatten(1).double(), b.flatten(1).double()) ** 2 / a[0].numel()

    def pairwise_mean(self, x):
        d = self.cross(x, x)
        i, j = torch.triu_indices(len(x), len(x), 1)
        return float(d[i, j].mean())


def test_intra_lpips_clusters_and_nan():
    train = torch.stack([torch.full((3, 4, 4), v, dtype=torch.float64) for v in (-0.8, 0.0, 0.8)])
    gens = torch.stack([torch.full((3, 4, 4), v, dtype=torch.float64) for v in (-0.9, -0.7, -0.6, 0.1)])
    cfg = IntraLPIPSConfig(resize=None, cluster_size=50)
    res = intra_lpips(gens, train, L2Stub(), cfg)
    assert res.assignment == [0, 0, 0, 1]
    assert res.counts == [3, 1, 0]
    want = np.mean([0.2 ** 2, 0.3 ** 2, 0.1 ** 2])  # pairs among -0.9, -0.7, -0.6
    assert res.per_cluster[0] == pytest.approx(want)
    assert math.isnan(res.per_cluster[1]) and math.isnan(res.per_cluster[2])
    assert res.value == pytest.approx(want)  # NaN clusters ignored
    # seeded subsampling to 2 members: one pair of the three; same seed -> same value
    sub = [intra_lpips(gens, train, L2Stub(), IntraLPIPSConfig(resize=None, cluster_size=2, seed=s)).value
           for s in range(6)]
    assert set(np.round(sub, 9)) <= set(np.round([0.04, 0.09, 0.01], 9)) and len(set(np.round(sub, 9))) > 1
    assert sub[0] == intra_lpips(gens, train, L2Stub(), IntraLPIPSConfig(resize=None, cluster_size=2, seed=0)).value
    # every cluster a singleton -> NaN
    assert math.isnan(intra_lpips(gens[:2], gens[:2], L2Stub(), cfg).value)
    assert assign_clusters(torch.tensor([[1.0, 1.0], [2.0, 0.5]])).tolist() == [0, 1]  # ties: lowest index


def test_intra_lpips_with_lpips_vgg_runs():
    vgg = LPIPSDistance.build(LPIPSConfig(net="vgg", device="cpu"), None, seed=0)
    res = intra_lpips(smooth(4, 48, seed=14), smooth(2, 48, seed=15), vgg, IntraLPIPSConfig(resize=32))
    assert sum(res.counts) == 4 and len(res.per_cluster) == 2
    assert math.isnan(res.value) or res.value > 0


# ------------------------------------------------------------------------------------------ offline / CLI
def test_no_network_access_when_building_every_metric(monkeypatch):
    import pytorch_fid.inception as pfi
    import torch.hub

    from gan_core.metrics.inception import SIFIDInception

    def boom(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", boom)
    monkeypatch.setattr(torch.hub, "download_url_to_file", boom)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", boom)
    monkeypatch.setattr(pfi, "load_state_dict_from_url", boom)
    assert FIDInception.from_weights(None, seed=1).weights_label == "random-init(seed=1)"
    assert SIFIDInception.from_weights(None, seed=1).weights_label == "random-init(seed=1)"
    for net in ("alex", "vgg"):
        m = LPIPSDistance.build(LPIPSConfig(net=net, device="cpu"), None, seed=1)
        assert m.weights_label == f"lpips-v0.1-{net}+random-trunk(seed=1)"


def test_weights_command_and_missing_weights(tmp_path, capsys):
    out = tmp_path / "w.json"
    assert cli_main(["weights", "--resources", str(tmp_path / "res"), "--out", str(out)]) == 0
    table = {r["name"]: r for r in json.loads(out.read_text())["weights"]}
    for name in ("fid_inception", "tv_inception_v3", "tv_alexnet", "tv_vgg16"):
        assert table[name]["state"] == "missing" and table[name]["fetch_target"] == f"fetch_{name}"
    assert "fetch_fid_inception" in capsys.readouterr().out

    (tmp_path / "res").mkdir()
    bogus = tmp_path / "res" / "alexnet-owt-7be5be79.pth"
    bogus.write_bytes(b"not the weights")
    cli_main(["weights", "--resources", str(tmp_path / "res"), "--out", str(out)])
    table = {r["name"]: r for r in json.loads(out.read_text())["weights"]}
    assert table["tv_alexnet"]["state"] == "unverified"
    with pytest.raises(DataError, match="sha256_prefix"):
        resolve_weights("tv_alexnet", tmp_path / "res")
    assert bogus.exists()  # never deleted by the metric side

    imgs = tmp_path / "fake"
    for k, im in enumerate(to_uint8(smooth(3, 64, seed=16))):
        write_image(imgs / f"{k}.png", im)
    with pytest.raises(MissingResourceError, match="fetch_fid_inception"):
        cli_main(["fid", "--fake", str(imgs), "--real", str(imgs), "--resources", str(tmp_path / "empty"),
                  "--out", str(tmp_path / "fid.json")])


def test_cli_metrics_write_json(tmp_path):
    fake = tmp_path / "fake"
    for g in range(2):
        for k, im in enumerate(to_uint8(smooth(3, 64, seed=20 + g))):
            write_image(fake / f"map{g}" / f"{k}.png", im)
    ref = tmp_path / "ref.png"
    write_image(ref, to_uint8(smooth(1, 64, seed=30))[0])

    out = tmp_path / "lp.json"
    cli_main(["lpips-diversity", "--fake", str(fake), "--groups", "--weights", "none", "--device", "cpu",
              "--out", str(out)])
    rec = json.loads(out.read_text())
    assert rec["metric"] == "lpips_diversity" and rec["value"] > 0 and len(rec["details"]["per_group"]) == 2
    assert rec["weights_label"].startswith("lpips-v0.1-alex+random-trunk")
    assert {"config_hash", "git_commit", "seed"} <= set(rec["provenance"])

    out = tmp_path / "pd.json"
    cli_main(["pixel-diversity", "--fake", str(fake / "map0"), "--reference", str(ref), "--out", str(out)])
    rec = json.loads(out.read_text())
    assert rec["details"]["variant"] == "gray,ddof=0" and rec["value"] > 0

    out = tmp_path / "dt.json"
    cli_main(["dist-to-train", "--fake", str(fake / "map0"), "--train", str(ref), "--weights", "none",
              "--n-aug", "1", "--device", "cpu", "--out", str(out)])
    rec = json.loads(out.read_text())
    assert rec["value"] > 0 and len(rec["details"]["per_sample"]) == 3
