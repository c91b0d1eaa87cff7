"""Intra-LPIPS of CDC (Ojha et al. 2021), the few-shot diversity metric (thesis l.2023; reference notes metrics.md §2.4).

1. Every generated image is assigned to its nearest training image by LPIPS (VGG) -> clusters
   (ties: the lowest training index). The official repository has no code for this step.
2. Per cluster: the members are shuffled with a seeded generator (CDC's ``random.shuffle`` is
   unseeded) and the first ``cluster_size`` = 50 kept; the cluster value is the mean LPIPS over
   all pairs i<j of the kept members.
3. Result: the mean over clusters, ignoring clusters with fewer than 2 members (NaN), as CDC's
   ``nanmean``. If every cluster is NaN, the result is NaN.

Images are resized to 256x256 first as CDC's ``Resize([256, 256])`` (here bilinear with antialias
on float images, equal to torchvision's PIL resize up to uint8 rounding); ``resize=None`` keeps them.

The distance is any object with ``cross(a, b) -> (Na, Nb)`` and ``pairwise_mean(x) -> float``
(:class:`~gan_core.metrics.lpips_metrics.LPIPSDistance` with ``net="vgg"``, or a stub in tests).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F


class PairDistance(Protocol):
    def cross(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...

    def pairwise_mean(self, x: torch.Tensor) -> float: ...


@dataclass
class IntraLPIPSConfig:
    """Defaults = CDC's ``feat_cluster.py`` (reference notes metrics.md §2.4)."""

    net: str = "vgg"  # CDC: lpips.LPIPS(net='vgg')
    cluster_size: int = 50  # CDC: members kept per cluster
    resize: int | None = 256  # CDC: Resize([256, 256]); None = keep the size
    seed: int = 0  # CDC does not seed; recorded here


@dataclass
class IntraLPIPSResult:
    value: float
    per_cluster: list[float] = field(default_factory=list)  # NaN for clusters with < 2 members
    counts: list[int] = field(default_factory=list)  # members assigned per training image (before subsampling)
    assignment: list[int] = field(default_factory=list)  # training index of every generated image


def resize_square(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)


def assign_clusters(distances: torch.Tensor) -> torch.Tensor:
    """Nearest training image (column) of every generated image (row) of a (G, T) distance matrix."""
    if distances.ndim != 2 or distances.shape[1] < 1:
        raise ValueError(f"expected a (generated, train) distance matrix, got {tuple(distances.shape)}")
    return torch.argmin(distances, dim=1)  # first minimum on ties


def cluster_values(images: torch.Tensor, assignment: torch.Tensor, n_clusters: int, metric: PairDistance,
                   cluster_size: int = 50, seed: int = 0) -> tuple[list[float], list[int]]:
    """Mean pairwise distance of up to ``cluster_size`` seeded members per cluster (NaN below 2 members)."""
    rng = np.random.default_rng(seed)
    values, counts = [], []
    assignment = assignment.cpu().numpy()
    for c in range(n_clusters):
        members = np.flatnonzero(assignment == c)
        counts.append(int(members.size))
        if members.size < 2:
            values.append(math.nan)
            continue
        kept = rng.permutation(members)[:cluster_size]
        values.append(float(metric.pairwise_mean(images[torch.from_numpy(np.sort(kept))])))
    return values, counts


def intra_lpips(generated: torch.Tensor, train: torch.Tensor, metric: PairDistance,
                cfg: IntraLPIPSConfig = IntraLPIPSConfig()) -> IntraLPIPSResult:
    """CDC's intra-LPIPS of ``generated`` (G, 3, H, W) around the ``train`` images (T, 3, H', W'), both in [-1, 1]."""
    if cfg.cluster_size < 2:
        raise ValueError(f"cluster_size must be >= 2, got {cfg.cluster_size}")
    gen = resize_square(generated, cfg.resize)
    tr = resize_square(train, cfg.resize)
    dist = metric.cross(tr, gen).T  # train features kept, generated images streamed
    assignment = assign_clusters(dist)
    values, counts = cluster_values(gen, assignment, tr.shape[0], metric, cfg.cluster_size, cfg.seed)
    finite = [v for v in values if not math.isnan(v)]
    value = float(np.mean(finite)) if finite else math.nan
    return IntraLPIPSResult(value, values, counts, assignment.cpu().tolist())


__all__ = ["IntraLPIPSConfig", "IntraLPIPSResult", "intra_lpips", "assign_clusters", "cluster_values", "resize_square"]
