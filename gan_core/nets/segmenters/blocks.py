"""Building blocks shared by the external evaluation segmenters (UperNet101, DRN-D-105, DeepLabV2).

Written for this project from the architecture facts in the reference notes (baselines.md §4.3-§4.5)
and the official repositories' layer widths; no code was copied. Parameter *names* follow the
released checkpoints so that ``load_state_dict(strict=True)`` works on them:

* :class:`Bottleneck` -- the "torchvision" key layout ``conv1/bn1, conv2/bn2, conv3/bn3,
  downsample.{0,1}``, stride on the 3x3 conv, optional dilation. Used by the UperNet encoder
  (CSAILVision ``mit_semseg/models/resnet.py``) and by DRN-D (fyu/drn ``drn.py``), whose
  bottlenecks have exactly this layout.
* :class:`CaffeBottleneck` -- the key layout of kazuto1011/deeplab-pytorch ``libs/models/resnet.py``
  (``reduce/conv3x3/increase/shortcut``, each a ``conv``+``bn`` pair, stride on the first 1x1 conv
  as in the MSRA/Caffe ResNet).

Both share :class:`ResidualUnit.forward` (``relu(residual(x) + skip(x))``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

EXPANSION = 4  # bottleneck output width = 4 x its inner width (He et al. 2016)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1, relu: bool = True,
            named: bool = False, eps: float = 1e-5) -> nn.Sequential:
    """Conv (no bias, 'same' padding for odd kernels times the dilation) + BatchNorm (+ ReLU).

    ``named=False``: children 0, 1, 2 (keys ``0.weight``, ``1.running_mean``), the layout of
    ``nn.Sequential(conv, bn, relu)`` in CSAILVision / fyu/drn. ``named=True``: children ``conv``,
    ``bn``, ``relu`` (keys ``conv.weight``, ``bn.running_mean``), the layout of deeplab-pytorch.
    """
    pad = dilation * (kernel // 2)
    mods = [("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation, bias=False)),
            ("bn", nn.BatchNorm2d(out_ch, eps=eps))]
    if relu:
        mods.append(("relu", nn.ReLU(inplace=True)))
    return nn.Sequential(OrderedDict(mods)) if named else nn.Sequential(*[m for _, m in mods])


class ResidualUnit(nn.Module):
    """``relu(residual(x) + skip(x))``; subclasses define the two paths with their official names."""

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual(x) + self.skip(x))


class Bottleneck(ResidualUnit):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 x4, torchvision key names (see module docstring)."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1, downsample: bool = False):
        super().__init__()
        out_ch = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = conv_bn(in_ch, out_ch, 1, stride, relu=False) if downsample else None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        return self.bn3(self.conv3(h))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)


def bottleneck_layer(in_ch: int, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """``blocks`` :class:`Bottleneck` s indexed 0..n-1; the first one gets the stride and, when the
    width or the stride changes, the projection shortcut (``downsample``)."""
    out_ch = planes * EXPANSION
    layers = [Bottleneck(in_ch, planes, stride, dilation, downsample=(stride != 1 or in_ch != out_ch))]
    layers += [Bottleneck(out_ch, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CaffeBottleneck(ResidualUnit):
    """deeplab-pytorch layout: ``reduce`` (1x1, stride) -> ``conv3x3`` (dilation) -> ``increase``
    (1x1, no ReLU); ``shortcut`` = 1x1 conv+bn in the first block of a layer, identity otherwise."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int, downsample: bool):
        super().__init__()
        mid = out_ch // EXPANSION
        self.reduce = conv_bn(in_ch, mid, 1, stride, named=True)
        self.conv3x3 = conv_bn(mid, mid, 3, 1, dilation, named=True)
        self.increase = conv_bn(mid, out_ch, 1, relu=False, named=True)
        self.shortcut = conv_bn(in_ch, out_ch, 1, stride, relu=False, named=True) if downsample else nn.Identity()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.increase(self.conv3x3(self.reduce(x)))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x)


def caffe_layer(blocks: int, in_ch: int, out_ch: int, stride: int, dilation: int) -> nn.Sequential:
    """Blocks named ``block1``..``blockN`` (deeplab-pytorch ``_ResLayer``); the first one projects."""
    return nn.Sequential(OrderedDict(
        (f"block{i + 1}", CaffeBottleneck(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1,
                                          dilation, downsample=(i == 0)))
        for i in range(blocks)))


def resize_logits(x: torch.Tensor, size: tuple[int, int], antialias_shrink: bool = False) -> torch.Tensor:
    """Bilinear (align_corners=False, the convention of all three official test scripts) to ``size``.

    ``antialias_shrink``: antialias when shrinking, as PIL's BILINEAR resize does (fyu/drn resizes
    its outputs with PIL); the networks themselves use plain ``F.interpolate``.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = antialias_shrink and (x.shape[-2] > size[0] or x.shape[-1] > size[1])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
