"""Building blocks shared by the GANs: spectral-normalised convolutions and BigGAN-like
residual up/down blocks (no normalisation layers, LeakyReLU(0.2)).

Spectral normalisation (Miyato et al., 2018) uses ``torch.nn.utils.spectral_norm``: its
state_dict stores ``weight_orig``/``weight_u``/``weight_v``, one power iteration per
forward pass in training mode and none in eval mode.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LRELU_SLOPE = 0.2  # reference notes §2.3/§2.4: LReLU(0.2) in G and D blocks


def sn_conv(in_ch: int, out_ch: int, kernel: int = 3, bias: bool = True, sn: bool = True) -> nn.Module:
    """A 'same'-padded conv, spectral-normalised unless ``sn=False``."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias)
    return nn.utils.spectral_norm(conv) if sn else conv


def init_conv_weights(module: nn.Module, std: float = 0.02) -> None:
    """N(0, std) for every Conv2d weight (SN convs: the ``weight_orig`` parameter); biases and
    ConvTranspose2d keep PyTorch's defaults (reference notes §2.3 "weights_init")."""
    for m in module.modules():
        if type(m) is nn.Conv2d:
            w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            with torch.no_grad():
                w.normal_(0.0, std)


def safe_avg_pool2(x: torch.Tensor) -> torch.Tensor:
    """AvgPool2d(2) that never pools a spatial side of length 1 to 0.

    Identical to ``F.avg_pool2d(x, 2)`` whenever both sides are >= 2; on a side of length 1
    that side is left alone. The official code would crash there (small images with noise
    height 3); we degrade gracefully instead.
    """
    kh = 2 if x.shape[-2] >= 2 else 1
    kw = 2 if x.shape[-1] >= 2 else 1
    if kh == 1 and kw == 1:
        return x
    return F.avg_pool2d(x, (kh, kw))


class ResBlockUp(nn.Module):
    """G block: LReLU -> [up x2] -> SN-conv3x3(in -> min(in,out)) -> LReLU -> SN-conv3x3(-> out),
    plus a learned shortcut [up x2] -> SN-conv1x1 (no bias). Reference notes §2.3."""

    def __init__(self, in_ch: int, out_ch: int, upsample: bool = True):
        super().__init__()
        mid = min(in_ch, out_ch)
        self.upsample = upsample
        self.conv1 = sn_conv(in_ch, mid, 3)
        self.conv2 = sn_conv(mid, out_ch, 3)
        self.conv_sc = sn_conv(in_ch, out_ch, 1, bias=False)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self._up(F.leaky_relu(x, LRELU_SLOPE)))
        h = self.conv2(F.leaky_relu(h, LRELU_SLOPE))
        return h + self.conv_sc(self._up(x))


class ResBlockDown(nn.Module):
    """D block: [LReLU] -> SN-conv(k, in -> min(in,out)) -> LReLU -> SN-conv(k, -> out) -> [AvgPool2],
    shortcut SN-conv1x1 (no bias) -> [AvgPool2]. Reference notes §2.4.

    ``first``: no activation before the first conv. ``kernel=1, downsample=False`` gives the
    1x1 content-branch block, whose shortcut is the identity when in == out.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, downsample: bool = True, first: bool = False):
        super().__init__()
        mid = min(in_ch, out_ch)
        self.first = first
        self.downsample = downsample
        self.conv1 = sn_conv(in_ch, mid, kernel)
        self.conv2 = sn_conv(mid, out_ch, kernel)
        learned_sc = in_ch != out_ch or downsample or kernel != 1
        self.conv_sc = sn_conv(in_ch, out_ch, 1, bias=False) if learned_sc else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, LRELU_SLOPE)
        h = self.conv2(F.leaky_relu(self.conv1(h), LRELU_SLOPE))
        s = self.conv_sc(x)
        if self.downsample:
            h, s = safe_avg_pool2(h), safe_avg_pool2(s)
        return h + s


def refresh_spectral_norm(module: nn.Module, n_iter: int = 15) -> int:
    """Run ``n_iter`` power iterations on the ``u``/``v`` buffers of every ``torch.nn.utils.spectral_norm``
    layer in ``module`` (in place, no autograd); returns the number of layers updated.

    A freshly built (or re-initialised) SN layer starts from random ``u``/``v``, so in eval mode (no power
    iteration) its weight is divided by a poor estimate of sigma and activations can explode. Call this
    after (re)initialising ``weight_orig``; trained checkpoints carry converged ``u``/``v`` already.
    """
    from torch.nn.utils.spectral_norm import SpectralNorm

    count = 0
    with torch.no_grad():
        for m in module.modules():
            for hook in m._forward_pre_hooks.values():
                if not isinstance(hook, SpectralNorm):
                    continue
                w = hook.reshape_weight_to_matrix(getattr(m, hook.name + "_orig"))
                u, v = getattr(m, hook.name + "_u"), getattr(m, hook.name + "_v")
                for _ in range(n_iter):
                    v.copy_(F.normalize(torch.mv(w.t(), u), dim=0, eps=hook.eps))
                    u.copy_(F.normalize(torch.mv(w, v), dim=0, eps=hook.eps))
                # keep the cached ``weight`` attribute consistent with the new estimate
                setattr(m, hook.name, hook.compute_weight(m, do_power_iteration=False))
                count += 1
    return count
