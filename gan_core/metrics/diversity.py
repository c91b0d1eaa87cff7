"""Diversity of generated samples: pixel diversity (SinGAN) and pairwise MS-SSIM (OASIS).

Pixel diversity (thesis l.1472 "pixel diversity metric from Shaham et al. (2019)"; reference notes
metrics.md §2.5). SinGAN's definition: "the standard deviation of the intensity values of each
pixel over 100 generated images, averaged over all pixels, normalized by the std of the intensity
values of the training image". No official code exists, so the variant is a project choice,
recorded in every result (:meth:`PixelDiversityConfig.variant`):

* ``mode="gray"`` (default): intensity = ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B in float (PIL's
  "L" conversion, as in the GPDM re-implementation, but without rounding to integers);
  ``mode="rgb"``: each channel is an intensity; per-pixel-per-channel std averaged over pixels and
  channels, normalised by the std over all values of the training image;
* ``ddof=0`` (default, population std, as GPDM's numpy version); ``ddof=1`` = torch's unbiased std.

The ratio does not depend on the value range ([-1, 1], [0, 1] or [0, 255]) since both stds scale alike.

MS-SSIM diversity (thesis l.1163, l.2717; reference notes metrics.md §2.6): mean MS-SSIM over all
pairs i<j of samples generated from the same label map (20 per label map for OASIS), averaged over
label maps; lower = more diverse. Computed with ``pytorch-msssim`` (OASIS pins 0.2.0; 1.0 gives the
same numbers) on images mapped to [0, 1] with ``data_range=1.0`` (the package default is 255). The
package needs a short side > 160 px; ``min_side`` can upsample smaller images (tiny preset only,
labelled; not in the official protocol).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

LUMA_601 = (0.299, 0.587, 0.114)
MSSSIM_MIN_SIDE = 161  # pytorch-msssim asserts min(H, W) > (win_size - 1) * 2**4 = 160


# ------------------------------------------------------------------------------ pairs
def pair_indices(n: int, max_pairs: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Index vectors (i, j) of all pairs i<j of n items (row-major), or a seeded subset of ``max_pairs``."""
    if n < 2:
        raise ValueError(f"pairwise diversity needs at least 2 images, got {n}")
    i, j = torch.triu_indices(n, n, offset=1)
    if max_pairs is not None and max_pairs < i.numel():
        if max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
        keep = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(i.numel(), max_pairs, replace=False)))
        i, j = i[keep], j[keep]
    return i, j


def mean_over_groups(groups: Sequence[torch.Tensor], per_group: Callable[[torch.Tensor], float]) -> tuple[float, list[float]]:
    """Average of ``per_group(g)`` over groups (e.g. samples of each label map); also the per-group values."""
    if not groups:
        raise ValueError("no groups of samples given")
    values = [float(per_group(g)) for g in groups]
    return float(np.mean(values)), values


# ------------------------------------------------------------------------------ pixel diversity
@dataclass
class PixelDiversityConfig:
    """Variant of SinGAN's pixel diversity (no official code; reference notes metrics.md §2.5)."""

    mode: str = "gray"  # gray (ITU-R 601 luma) | rgb
    ddof: int = 0  # 0 = population std (GPDM numpy), 1 = unbiased

    def variant(self) -> str:
        return f"{self.mode},ddof={self.ddof}"


def _intensity(x: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma, or unchanged for ``rgb``."""
    if mode == "rgb":
        return x
    if mode != "gray":
        raise ValueError(f"pixel diversity mode must be 'gray' or 'rgb', got {mode!r}")
    w = torch.tensor(LUMA_601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def pixel_diversity(samples: torch.Tensor, reference: torch.Tensor, cfg: PixelDiversityConfig = PixelDiversityConfig()) -> float:
    """Mean over pixels of the per-pixel std over ``samples`` (N, 3, H, W), divided by the std of ``reference``.

    ``reference`` is the training image, (3, H', W') or (1, 3, H', W'); any common value range.
    """
    if samples.ndim != 4 or samples.shape[1] != 3:
        raise ValueError(f"samples must be (N, 3, H, W), got {tuple(samples.shape)}")
    if samples.shape[0] < 2:
        raise ValueError(f"pixel diversity needs at least 2 samples, got {samples.shape[0]}")
    ref = reference.unsqueeze(0) if reference.ndim == 3 else reference
    if ref.ndim != 4 or ref.shape[0] != 1 or ref.shape[1] != 3:
        raise ValueError(f"reference must be one image (3, H, W), got {tuple(reference.shape)}")
    s = _intensity(samples.double(), cfg.mode)
    r = _intensity(ref.double(), cfg.mode)
    ref_std = float(r.std(correction=cfg.ddof))
    if ref_std == 0.0:
        raise ValueError("the reference image is constant (std 0): pixel diversity is undefined")
    return float(s.std(dim=0, correction=cfg.ddof).mean()) / ref_std


# ------------------------------------------------------------------------------ (MS-)SSIM
@dataclass
class MSSSIMConfig:
    """pytorch-msssim settings; defaults = the package's (= OASIS) except data_range for [0, 1] input."""

    data_range: float = 1.0  # images are mapped from [-1, 1] to [0, 1] (package default 255 is wrong here)
    win_size: int = 11
    win_sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03
    batch_size: int = 32  # pairs per call
    min_side: int = 0  # 0: error below 161 px (official); >0 upsample (tiny preset only, labelled)
    device: str | None = None


def _prepare(x: torch.Tensor, cfg: MSSSIMConfig) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (times data_range), upsampled to ``min_side`` if requested, checked for size."""
    x01 = (x.float() + 1.0) / 2.0 * cfg.data_range
    h, w = x01.shape[-2:]
    short = min(h, w)
    if cfg.min_side > 0 and short < cfg.min_side:
        s = cfg.min_side / short
        size = (max(cfg.min_side, math.ceil(h * s - 1e-9)), max(cfg.min_side, math.ceil(w * s - 1e-9)))
        x01 = F.interpolate(x01, size=size, mode="bilinear", align_corners=False)
    if min(x01.shape[-2:]) <= (cfg.win_size - 1) * 16:
        raise ValueError(
            f"MS-SSIM needs a short side > {(cfg.win_size - 1) * 16} px (4 downsamplings of an "
            f"{cfg.win_size}-px window), got {tuple(x.shape[-2:])}; set min_side for tiny images"
        )
    return x01


def ms_ssim_pairs(x: torch.Tensor, y: torch.Tensor, cfg: MSSSIMConfig = MSSSIMConfig()) -> torch.Tensor:
    """MS-SSIM of each pair (x[k], y[k]) of images in [-1, 1]: a tensor (N,)."""
    from pytorch_msssim import ms_ssim

    return ms_ssim(_prepare(x, cfg), _prepare(y, cfg), data_range=cfg.data_range, size_average=False,
                   win_size=cfg.win_size, win_sigma=cfg.win_sigma, K=(cfg.k1, cfg.k2))


def ssim_pairs(x: torch.Tensor, y: torch.Tensor, cfg: MSSSIMConfig = MSSSIMConfig()) -> torch.Tensor:
    """Single-scale SSIM of each pair (x[k], y[k]) of images in [-1, 1] (no size limit): a tensor (N,)."""
    from pytorch_msssim import ssim

    x01, y01 = (x.float() + 1.0) / 2.0 * cfg.data_range, (y.float() + 1.0) / 2.0 * cfg.data_range
    return ssim(x01, y01, data_range=cfg.data_range, size_average=False, win_size=cfg.win_size,
                win_sigma=cfg.win_sigma, K=(cfg.k1, cfg.k2))


def mean_pairwise_msssim(images: torch.Tensor, cfg: MSSSIMConfig = MSSSIMConfig(), max_pairs: int | None = None,
                         seed: int = 0) -> float:
    """Mean MS-SSIM over pairs i<j of ``images`` (N, 3, H, W) in [-1, 1], batched over pairs."""
    from .fid import default_device

    dev = default_device(cfg.device)
    i, j = pair_indices(images.shape[0], max_pairs, seed)
    total, count = 0.0, 0
    with torch.no_grad():
        for k in range(0, i.numel(), cfg.batch_size):
            a = images[i[k : k + cfg.batch_size]].to(dev)
            b = images[j[k : k + cfg.batch_size]].to(dev)
            v = ms_ssim_pairs(a, b, cfg).double()
            total += float(v.sum())
            count += v.numel()
    return total / count


def msssim_diversity(groups: Sequence[torch.Tensor], cfg: MSSSIMConfig = MSSSIMConfig()) -> tuple[float, list[float]]:
    """Mean pairwise MS-SSIM per group (samples of one label map; thesis l.1163: 20), averaged over groups."""
    return mean_over_groups(groups, lambda g: mean_pairwise_msssim(g, cfg))


__all__ = [
    "PixelDiversityConfig", "pixel_diversity", "MSSSIMConfig", "ms_ssim_pairs", "ssim_pairs",
    "mean_pairwise_msssim", "msssim_diversity", "pair_indices", "mean_over_groups", "LUMA_601",
]
