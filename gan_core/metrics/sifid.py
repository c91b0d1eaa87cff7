"""Batched per-sample SIFID (Shaham et al. 2019; thesis l.1472, l.1835, l.1904).

SIFID of a generated image = Fréchet distance between the Gaussians fitted to the per-position
features of one Inception block for the fake and for the real image; every spatial position of
the (C, h, w) block output is one C-dimensional sample (reference notes metrics.md §2.2).

Conventions (official SinGAN / SIV-GAN / OSMIS code, reference notes metrics.md §2.2 and
downstream-protocols.md §7):

* images in [-1, 1], no resize to 299;
* real images are bilinearly resized to the fake resolution. The official code resizes the
  uint8 image with ``PIL.Image.BILINEAR`` (antialiased when shrinking); here the float image is
  resized with ``F.interpolate(mode="bilinear", antialias=True)`` -- equal up to uint8
  quantisation. Nothing happens when sizes already match (the usual case);
* ``real_mode="first"``: every fake is compared with the first real image (official
  ``calculate_sifid_given_paths``); ``"all"``: the positions of all real images are pooled
  into one sample set;
* covariances with ddof=1 in float64; the network runs in float32 (no autocast: the
  statistics need the precision).

Speed: the network runs once per image (batched); the real statistics are computed once; the
trace term uses the cheapest exact route per layer (:func:`gan_core.metrics.frechet.choose_route`:
the sample-space SVD for the 2048-d layer, whose h*w is far below 2048).

``min_side`` (default 0 = off) upsamples fakes (and hence reals) bilinearly so that the short
side is at least ``min_side``. This is NOT in the official code (which fails on images too small
for the deepest blocks, e.g. < 107 px for the 2048-d block); it exists only for the tiny CPU
preset, whose numbers are labelled as such.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .frechet import Method, ReferenceStats
from .inception import BLOCK_DIMS, block_output_sizes

RealMode = Literal["first", "all"]


@dataclass
class SIFIDConfig:
    """Settings of a SIFID computation; defaults follow the official code / thesis."""

    layers: tuple[int, ...] = (0, 1, 2, 3)  # SIFID-1..4 = blocks 64/192/768/2048 (thesis l.1904)
    real_mode: str = "first"  # official: every fake vs. the first real image
    batch_size: int = 8
    method: str = "auto"  # Fréchet trace route: auto | sqrtm | eigh | svd (all exact)
    min_side: int = 0  # 0 = never upscale (official); >0 only for tiny images (tiny preset)


def _check_images(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a tensor (N, 3, H, W), got {shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name}: no images")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"{name}: values must lie in [-1, 1], got [{lo:.3g}, {hi:.3g}] (uint8 or [0, 255] input?)")


def target_size(height: int, width: int, min_side: int = 0) -> tuple[int, int]:
    """The evaluation size: (H, W), or scaled up so that min(H, W) >= ``min_side``."""
    short = min(height, width)
    if min_side <= 0 or short >= min_side:
        return height, width
    scale = min_side / short
    return max(min_side, math.ceil(height * scale - 1e-9)), max(min_side, math.ceil(width * scale - 1e-9))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _positions(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C): every spatial position is one C-dimensional sample."""
    return feat.flatten(2).transpose(1, 2)


def _check_layers(layers: Sequence[int], size: tuple[int, int]) -> None:
    if not layers:
        raise ValueError("no SIFID layers requested")
    bad = [l for l in layers if l not in range(len(BLOCK_DIMS))]
    if bad:
        raise ValueError(f"SIFID layers must be in 0..{len(BLOCK_DIMS) - 1}, got {bad}")
    sizes = block_output_sizes(*size)
    for l in layers:
        h, w = sizes[l]
        if h * w < 2:
            raise ValueError(
                f"images of {size[0]}x{size[1]} give {h}x{w} positions at SIFID layer {l} "
                f"({BLOCK_DIMS[l]}-d); at least 2 are needed (use fewer layers or min_side)"
            )


def real_statistics(
    reals: torch.Tensor,
    net: torch.nn.Module,
    size: tuple[int, int],
    layers: Sequence[int],
    real_mode: str = "first",
    batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> dict[int, ReferenceStats]:
    """Per-layer cached statistics of the real image(s), resized to ``size``."""
    if real_mode not in ("first", "all"):
        raise ValueError(f"real_mode must be 'first' or 'all', got {real_mode!r}")
    reals = reals[:1] if real_mode == "first" else reals
    upto = max(layers)
    chunks: dict[int, list[torch.Tensor]] = {l: [] for l in layers}
    with torch.no_grad():
        for i in range(0, reals.shape[0], batch_size):
            x = _resize(reals[i : i + batch_size].to(device=device, dtype=torch.float32), size)
            feats = net(x, upto=upto)
            for l in layers:
                chunks[l].append(_positions(feats[l]).reshape(-1, feats[l].shape[1]))
        return {l: ReferenceStats.from_features(torch.cat(chunks[l]), device=device) for l in layers}


def sifid_per_sample(
    fakes: torch.Tensor,
    reals: torch.Tensor,
    net: torch.nn.Module,
    layers: Sequence[int] = (0, 1, 2, 3),
    real_mode: RealMode = "first",
    batch_size: int = 8,
    device: torch.device | str | None = None,
    method: Method = "auto",
    min_side: int = 0,
) -> np.ndarray:
    """SIFID of every fake at each requested layer: an array (N, len(layers)), float64.

    ``fakes`` (N, 3, H, W) and ``reals`` (M, 3, H', W') are float tensors in [-1, 1]; ``net``
    is a :class:`~gan_core.metrics.inception.SIFIDInception` (moved to ``device``, default CPU).
    """
    _check_images(fakes, "fakes")
    _check_images(reals, "reals")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layers = tuple(int(l) for l in layers)
    device = torch.device(device or "cpu")
    size = target_size(int(fakes.shape[2]), int(fakes.shape[3]), min_side)
    _check_layers(layers, size)
    net = net.to(device).eval()
    refs = real_statistics(reals, net, size, layers, real_mode, batch_size, device)
    out = np.empty((fakes.shape[0], len(layers)), dtype=np.float64)
    with torch.no_grad():
        for i in range(0, fakes.shape[0], batch_size):
            x = _resize(fakes[i : i + batch_size].to(device=device, dtype=torch.float32), size)
            feats = net(x, upto=max(layers))
            for j, l in enumerate(layers):
                out[i : i + x.shape[0], j] = refs[l].distances(_positions(feats[l]), method=method).cpu().numpy()
    return out


def mean_and_best(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and best (= minimum) SIFID over samples (axis 0), thesis l.1472 ("mean" and "best" SIFID)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] == 0:
        raise ValueError("mean_and_best needs at least one sample")
    return v.mean(axis=0), v.min(axis=0)


__all__ = ["SIFIDConfig", "sifid_per_sample", "real_statistics", "mean_and_best", "target_size"]
