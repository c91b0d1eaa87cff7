"""SPADE normalisation and the SPADE residual block, shared by the OASIS generator (thesis Chapter 4,
``nets/oasis.py``) and the SPADE+ baseline generator (``nets/spade.py``).

Facts (reference notes §1.2 and §3: "OASIS's SPADE block is a copy of this design"):
* SPADE: ``out = norm(x) * (1 + gamma(seg)) + beta(seg)`` with a parameter-free norm (batch norm, affine off;
  the official SynchronizedBatchNorm2d has the same state-dict keys), ``mlp_shared = Conv(label_nc, 128, ks) +
  ReLU``, ``gamma``/``beta`` = Conv(128, C, ks), ks 3; the segmentation map is nearest-resized to x; no
  spectral norm inside SPADE.
* ResBlock: ``dx = conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x))))))``, shortcut ``conv_s(norm_s(x))`` (1x1, no
  bias) when fin != fout, else identity; fmiddle = min(fin, fout); LReLU 0.2; spectral norm on conv_0, conv_1
  and conv_s only.

State-dict keys (kept identical to the released OASIS checkpoints, reference notes §1.8):
``conv_0.*``, ``conv_1.*``, ``conv_s.*``, ``norm_{0,1,s}.first_norm.*``, ``norm_*.mlp_shared.0.*``,
``norm_*.mlp_gamma.*``, ``norm_*.mlp_beta.*``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE, sn_conv

PARAM_FREE_NORMS = ("batch", "instance")


@dataclass(frozen=True)
class SPADENormSpec:
    """How every SPADE layer of a generator is built."""

    label_nc: int                  # channels of the conditioning map (label, plus 3D noise if used)
    hidden: int = 128              # reference notes §1.2/§3: nhidden 128
    kernel: int = 3                # reference notes §1.2 (--spade_ks 3) / §3 ("spadesyncbatch3x3")
    param_free_norm: str = "batch"  # official SyncBN(affine=False); "instance" is the other official option

    def __post_init__(self) -> None:
        if self.param_free_norm not in PARAM_FREE_NORMS:
            raise ValueError(f"param_free_norm must be one of {PARAM_FREE_NORMS}, got {self.param_free_norm!r}")
        if self.kernel % 2 != 1:
            raise ValueError("SPADE kernel must be odd")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (see module doc)."""

    def __init__(self, norm_nc: int, spec: SPADENormSpec):
        super().__init__()
        if spec.param_free_norm == "batch":
            self.first_norm = nn.BatchNorm2d(norm_nc, affine=False)
        else:
            self.first_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        pad = spec.kernel // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(spec.label_nc, spec.hidden, spec.kernel, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(spec.hidden, norm_nc, spec.kernel, padding=pad)
        self.mlp_beta = nn.Conv2d(spec.hidden, norm_nc, spec.kernel, padding=pad)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        h = self.mlp_shared(seg)
        return self.first_norm(x) * (1 + self.mlp_gamma(h)) + self.mlp_beta(h)


class SPADEResBlock(nn.Module):
    """SPADE residual block (see module doc)."""

    def __init__(self, fin: int, fout: int, spec: SPADENormSpec):
        super().__init__()
        mid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = sn_conv(fin, mid, 3)
        self.conv_1 = sn_conv(mid, fout, 3)
        self.norm_0 = SPADE(fin, spec)
        self.norm_1 = SPADE(mid, spec)
        if self.learned_shortcut:
            self.conv_s = sn_conv(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, spec)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), LRELU_SLOPE))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), LRELU_SLOPE))
        return s + dx
