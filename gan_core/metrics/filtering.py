"""SIFID-rank filtering of a generated pool (OSMIS, thesis l.1835, l.1904, Table 6.8 l.1890-1900).

"Ranking the images by the average of SIFID ranks at different InceptionV3 layers, we exclude
bad-quality samples by filtering out 15% lowest-ranked images" (thesis l.1835). Table 6.8
variants: SIFID-1 only at 5/10/15 %, SIFID-{1,2,3,4} at 15/25/50 %, and "no selection"
(``drop_fraction = 0``).

Rules fixed here (the thesis leaves them open; reference notes metrics.md §2.2):

* per layer, samples are ranked in ascending SIFID (rank 1 = best) with
  ``scipy.stats.rankdata(method="average")`` (ties share their mean rank);
* the ranks are averaged over the chosen layers (equal weights);
* ``n_drop = floor(drop_fraction * N + 0.5)`` samples are dropped (round half *up*, not
  Python's half-to-even; exact for N = 100 and every thesis fraction; N = 12 at 15 % drops 2);
* the samples with the largest mean rank are dropped; equal mean ranks are broken by index
  (a stable sort: among tied samples, the one with the higher index is dropped first).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class FilterConfig:
    """One data selection of Table 6.8; defaults = the thesis method (SIFID-{1,2,3,4}, 15 %)."""

    layers: tuple[int, ...] = (0, 1, 2, 3)  # columns of the SIFID table (SIFID-1..4), thesis l.1904
    drop_fraction: float = 0.15  # thesis l.1835


@dataclass(frozen=True)
class FilterResult:
    kept_indices: np.ndarray  # ascending sample indices
    rejected_indices: np.ndarray  # ascending sample indices
    mean_rank: np.ndarray  # (N,) average rank over the chosen layers (1 = best)


def n_dropped(n: int, drop_fraction: float) -> int:
    """Number of samples to drop: round half up of ``drop_fraction * n``."""
    return int(math.floor(drop_fraction * n + 0.5 + 1e-9))


def rank_filter(sifid: np.ndarray, drop_fraction: float = 0.15, layers: Sequence[int] = (0, 1, 2, 3)) -> FilterResult:
    """Drop the ``drop_fraction`` worst samples by mean per-layer SIFID rank.

    ``sifid`` is (N, L): one row per sample, one column per computed layer; ``layers`` selects
    columns of it (with a full table, column k = SIFID-(k+1)).
    """
    table = np.asarray(sifid, dtype=np.float64)
    if table.ndim == 1:
        table = table[:, None]
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError(f"SIFID table must be (N, L) with N >= 1, got shape {table.shape}")
    layers = tuple(int(l) for l in layers)
    if not layers or any(l < 0 or l >= table.shape[1] for l in layers):
        raise ValueError(f"layers {layers} must be column indices of a table with {table.shape[1]} column(s)")
    if not 0.0 <= drop_fraction < 1.0:
        raise ValueError(f"drop_fraction must lie in [0, 1), got {drop_fraction}")
    sel = table[:, layers]
    if not np.isfinite(sel).all():
        bad = np.unique(np.nonzero(~np.isfinite(sel))[0]).tolist()
        raise ValueError(f"SIFID table has non-finite values for samples {bad}")
    n = table.shape[0]
    ranks = np.stack([rankdata(sel[:, j], method="average") for j in range(sel.shape[1])], axis=1)
    mean_rank = ranks.mean(axis=1)
    k = n_dropped(n, drop_fraction)
    if k >= n:
        raise ValueError(f"drop_fraction {drop_fraction} of {n} samples would drop all of them")
    order = np.argsort(mean_rank, kind="stable")  # best first; ties by ascending index
    rejected = np.sort(order[n - k :]) if k else np.array([], dtype=np.int64)
    kept = np.sort(order[: n - k])
    return FilterResult(kept_indices=kept.astype(np.int64), rejected_indices=rejected.astype(np.int64), mean_rank=mean_rank)


__all__ = ["FilterConfig", "FilterResult", "rank_filter", "n_dropped"]
