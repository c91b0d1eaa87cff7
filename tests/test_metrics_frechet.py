"""Exact Fréchet distance: closed forms and agreement of the three routes with scipy's sqrtm."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_core.metrics.frechet import (
    ReferenceStats,
    choose_route,
    frechet_distance,
    frechet_from_features,
    gaussian_stats,
    trace_sqrt_sqrtm,
)

METHODS = ("sqrtm", "eigh", "svd", "auto")


def scipy_reference(mu1, s1, mu2, s2) -> float:
    """Textbook formula with scipy.linalg.sqrtm, independent of the module under test."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("method", METHODS)
def test_one_dimensional_closed_form(method):
    # N(1.5, 2^2) vs N(-0.5, 0.5^2): (mu1-mu2)^2 + (s1-s2)^2 = 4 + 2.25
    fd = frechet_distance(np.array([1.5]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]]), method)
    assert fd == pytest.approx(6.25, rel=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_diagonal_closed_form(method):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3.0, 7), rng.uniform(0.1, 3.0, 7)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_shift_and_scale_of_features(method):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    c = rng.normal(size=12)
    assert frechet_from_features(x, x + c, method) == pytest.approx(np.sum(c**2), rel=1e-7)
    # scaling by s: (s-1)^2 (||mu||^2 + tr S)
    s = 1.7
    mu, sigma = gaussian_stats(x)
    expected = (s - 1) ** 2 * (mu @ mu + np.trace(sigma))
    assert frechet_from_features(x, s * x, method) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_distance_to_itself_is_zero(method):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 30))
    mu, sigma = gaussian_stats(x)
    scale = np.trace(sigma)
    assert abs(frechet_distance(mu, sigma, mu, sigma, method)) < 1e-6 * scale
    assert abs(frechet_from_features(x, x, method)) < 1e-6 * scale


def test_gaussian_stats_matches_numpy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 6)).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


@pytest.mark.parametrize(
    "n1,n2,d",
    [(400, 300, 48), (36, 36, 256), (36, 60, 256)],  # full rank; rank-deficient (n < d) as SIFID's 2048-d layer
    ids=["full-rank", "rank-deficient", "rank-deficient-unequal"],
)
def test_routes_agree_with_scipy_sqrtm(n1, n2, d):
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    f1 = np.maximum(rng.normal(size=(n1, d)) @ mix, 0)  # ReLU-like, correlated features
    f2 = np.maximum(rng.normal(size=(n2, d)) @ mix + 0.1, 0)
    mu1, s1 = gaussian_stats(f1)
    mu2, s2 = gaussian_stats(f2)
    ref = scipy_reference(mu1, s1, mu2, s2)
    for method in METHODS:
        assert frechet_distance(mu1, s1, mu2, s2, method) == pytest.approx(ref, rel=1e-5), method
        assert frechet_from_features(f1, f2, method) == pytest.approx(ref, rel=1e-5), method


def test_route_choice():
    assert choose_route(36, 36, 2048) == "svd"  # SIFID-4 at 256x256
    assert choose_route(180, 180, 2048) == "svd"  # SIFID-4 at 384x640
    assert choose_route(59913, 59913, 64) == "eigh"  # SIFID-1 at 384x640
    assert choose_route(14352, 14352, 192) == "eigh"


def test_reference_stats_batched_and_torch_inputs():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(50, 20))
    fakes = rng.normal(size=(3, 40, 20)) * np.array([1.0, 1.5, 0.5])[:, None, None]
    ref = ReferenceStats.from_features(torch.from_numpy(real).float())
    for method in METHODS:
        batched = ref.distances(torch.from_numpy(fakes), method=method)
        assert batched.shape == (3,)
        single = [frechet_from_features(real.astype(np.float32), f, "sqrtm") for f in fakes]
        np.testing.assert_allclose(batched.numpy(), single, rtol=1e-5)


def test_sqrtm_imaginary_check():
    # S1 S2 = diag(1, -4): its root is diag(1, 2i), far from real -> pytorch-fid raises.
    with pytest.raises(ValueError, match="imaginary"):
        trace_sqrt_sqrtm(np.eye(2), np.diag([1.0, -4.0]))


def test_sqrtm_eps_fallback(monkeypatch):
    calls = []
    real_sqrtm = scipy.linalg.sqrtm

    def fake_sqrtm(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(scipy.linalg, "sqrtm", fake_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    tr = trace_sqrt_sqrtm(s1, s2, eps=1e-6)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert tr == pytest.approx(3.0 + 2.0, rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="magic")
    with pytest.raises(ValueError, match="incompatible"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 4)))
