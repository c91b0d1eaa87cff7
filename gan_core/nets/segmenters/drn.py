"""DRN-D-105 segmentation network of fyu/drn (Cityscapes, 19 train ids) -- the mIoU segmenter of
the thesis for Cityscapes ("multi-scale DRN-D-105 (Yu et al., 2017)", thesis l.1123; reference notes
baselines.md §4.4).

Written anew from the facts of the official repository (commit d75db2e; BSD-3), no code copied:

* ``drn.py`` ``drn_d_105``: ``DRN(Bottleneck, [1, 1, 3, 4, 23, 3, 1, 1], arch='D')`` with channels
  (16, 32, 64, 128, 256, 512, 512, 512): ``layer0`` = 7x7 conv 3->16 (stride 1) + BN + ReLU;
  ``layer1`` = 3x3 conv 16->16; ``layer2`` = 3x3 conv 16->32 stride 2; ``layer3..layer6`` = bottleneck
  layers of widths 64/128/256/512 (x4) with 3/4/23/3 blocks, strides 2/2/1/1 and dilations 1/1/2/4
  (stride on the 3x3 conv, torchvision key layout); ``layer7`` = 3x3 conv 2048->512 dilation 2,
  ``layer8`` = 3x3 conv 512->512; every conv layer is a flat ``Sequential(conv, BN, ReLU)``.
* ``segment.py`` ``DRNSeg``: ``base = nn.Sequential(*list(drn.children())[:-2])`` (the DRN without
  avgpool and fc, hence keys ``base.0.*`` = layer0 ... ``base.8.*`` = layer8), ``seg`` = 1x1 conv
  512->19 with bias, ``up`` = ``ConvTranspose2d(19, 19, 16, stride=8, padding=4, groups=19,
  bias=False)`` initialised as a fixed bilinear kernel (FCN "upsample_filt"). The released
  ``drn-d-105_ms_cityscapes.pth`` is loaded by ``segment.py test --pretrained`` with
  ``single_model.load_state_dict(torch.load(...))``, i.e. it is a plain DRNSeg state dict.
  Key names checked against the repository source; NOT checked against the released file itself.

``forward`` returns the pre-softmax logits after ``up`` (x8), resized bilinearly to the input size
when the input is not a multiple of 8. The official multi-scale test (log-softmax summed over scales
1, 0.5, 0.75, 1.25, 1.5, 1.75) lives in the evaluation protocol (registry.py / external_seg.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import EXPANSION, bottleneck_layer, conv_bn, resize_logits

CITYSCAPES_CLASSES = 19
DRN_D105_LAYERS = (1, 1, 3, 4, 23, 3, 1, 1)
DRN_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)


def conv_layers(in_ch: int, out_ch: int, n: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """``n`` conv-BN-ReLU triples flattened into one Sequential (DRN-D ``_make_conv_layers``)."""
    mods: list[nn.Module] = []
    for i in range(n):
        mods.extend(conv_bn(in_ch if i == 0 else out_ch, out_ch, 3, stride if i == 0 else 1, dilation))
    return nn.Sequential(*mods)


def bilinear_kernel(size: int) -> torch.Tensor:
    """(size, size) separable bilinear interpolation kernel (FCN's upsample_filt)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = 1.0 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    return (og[:, None] * og[None, :]).float()


def drn_d_base(layers: tuple[int, ...] = DRN_D105_LAYERS, channels: tuple[int, ...] = DRN_CHANNELS) -> nn.Sequential:
    """layer0..layer8 of a DRN-D (no avgpool / fc) as one Sequential indexed 0..8."""
    c = channels
    mods = [
        conv_bn(3, c[0], 7),  # layer0: 7x7 conv, stride 1, padding 3
        conv_layers(c[0], c[0], layers[0], 1),
        conv_layers(c[0], c[1], layers[1], 2),
        bottleneck_layer(c[1], c[2], layers[2], stride=2),
        bottleneck_layer(c[2] * EXPANSION, c[3], layers[3], stride=2),
        bottleneck_layer(c[3] * EXPANSION, c[4], layers[4], dilation=2),
        bottleneck_layer(c[4] * EXPANSION, c[5], layers[5], dilation=4),
        conv_layers(c[5] * EXPANSION, c[6], layers[6], dilation=2),
        conv_layers(c[6], c[7], layers[7], dilation=1),
    ]
    return nn.Sequential(*mods)


class DRNSegD105(nn.Module):
    """DRNSeg(drn_d_105, 19): ``base`` + ``seg`` + fixed bilinear ``up``; logits at the input size."""

    UP_FACTOR = 8

    def __init__(self, num_classes: int = CITYSCAPES_CLASSES):
        super().__init__()
        self.base = drn_d_base()
        self.seg = nn.Conv2d(DRN_CHANNELS[-1], num_classes, 1, bias=True)
        k = 2 * self.UP_FACTOR
        self.up = nn.ConvTranspose2d(num_classes, num_classes, k, stride=self.UP_FACTOR, padding=self.UP_FACTOR // 2,
                                     groups=num_classes, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(bilinear_kernel(k).expand_as(self.up.weight))
        self.up.weight.requires_grad_(False)  # fixed, as in DRNSeg (still a state-dict entry)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_logits(self.up(self.seg(self.base(x))), tuple(x.shape[-2:]))
