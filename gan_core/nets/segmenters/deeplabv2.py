"""DeepLabV2 ResNet-101 with multi-scale inputs (MSC) of kazuto1011/deeplab-pytorch, trained on
COCO-Stuff 164k (182 label indices) -- the mIoU segmenter of the thesis for COCO-Stuff
("DeepLabV2 (Chen et al., 2015) for COCO-Stuff", thesis l.1123; reference notes baselines.md §4.5).

Written anew from the facts of the official repository (commit 4219467; MIT), no code copied:

* ``libs/models/deeplabv2.py`` ``DeepLabV2(n_classes, n_blocks=[3, 4, 23, 3], atrous_rates=[6, 12,
  18, 24])`` (values from ``hubconf.py`` and ``configs/cocostuff164k.yaml``): ``layer1`` = stem
  (``conv1`` = 7x7/2 conv 3->64 + BN + ReLU, then ``pool`` = MaxPool 3/2 pad 1 with ``ceil_mode=True``);
  ``layer2..layer5`` = ``_ResLayer`` s of Caffe-style bottlenecks (``reduce`` 1x1 with the stride,
  ``conv3x3`` dilated, ``increase`` 1x1, ``shortcut`` in the first block), out widths 256/512/1024/2048,
  strides 1/2/1/1, dilations 1/1/2/4 (output stride 8); BN eps 1e-5; ``aspp`` = four 3x3 convs
  ``c0..c3`` 2048->182 with bias, dilation = padding = rate, summed.
* ``libs/models/msc.py`` ``MSC(base, scales=[0.5, 0.75])``: logits of the full-size input and of the
  input bilinearly resized by 0.5 and 0.75 (``F.interpolate(scale_factor=p, align_corners=False)``),
  the smaller ones bilinearly resized to the full-scale logit size, fused by a pixel-wise max (eval mode).
* The released ``deeplabv2_resnet101_msc-cocostuff164k-100000.pth`` is ``model.module.state_dict()``
  of the MSC model (``main.py`` train), i.e. keys ``base.layer1.conv1.conv.weight`` ...
  ``base.aspp.c3.bias``; ``hubconf.py`` loads it into ``MSC`` directly. Key names checked against the
  repository source; NOT checked against the released file itself.

``forward`` returns the max-fused logits bilinearly upsampled to the input size (``main.py`` test
upsamples to the label size before the argmax).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import caffe_layer, conv_bn, resize_logits

COCOSTUFF_CLASSES = 182
RESNET101_BLOCKS = (3, 4, 23, 3)
ATROUS_RATES = (6, 12, 18, 24)
MSC_SCALES = (0.5, 0.75)


class ASPPSum(nn.Module):
    """Parallel dilated 3x3 convs ``c0..c{n-1}`` (with bias) whose outputs are summed."""

    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, ...]):
        super().__init__()
        for i, r in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(in_ch, out_ch, 3, 1, padding=r, dilation=r, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for conv in self.children():
            out = conv(x) if out is None else out + conv(x)
        return out


class DeepLabV2(nn.Sequential):
    """Dilated ResNet-101 + ASPP, output stride 8 (logits at 1/8 resolution)."""

    def __init__(self, num_classes: int = COCOSTUFF_CLASSES, blocks: tuple[int, ...] = RESNET101_BLOCKS,
                 rates: tuple[int, ...] = ATROUS_RATES):
        stem = nn.Sequential(OrderedDict([("conv1", conv_bn(3, 64, 7, 2, named=True)),
                                          ("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))]))
        super().__init__(OrderedDict([
            ("layer1", stem),
            ("layer2", caffe_layer(blocks[0], 64, 256, 1, 1)),
            ("layer3", caffe_layer(blocks[1], 256, 512, 2, 1)),
            ("layer4", caffe_layer(blocks[2], 512, 1024, 1, 2)),
            ("layer5", caffe_layer(blocks[3], 1024, 2048, 1, 4)),
            ("aspp", ASPPSum(2048, num_classes, rates)),
        ]))


class DeepLabV2MSC(nn.Module):
    """MSC wrapper (``base`` = :class:`DeepLabV2`): max over scales 1, 0.5, 0.75; logits at input size."""

    def __init__(self, num_classes: int = COCOSTUFF_CLASSES, scales: tuple[float, ...] = MSC_SCALES):
        super().__init__()
        self.base = DeepLabV2(num_classes)
        self.scales = tuple(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.base(x)
        size = tuple(full.shape[-2:])
        fused = full
        for s in self.scales:
            xs = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            fused = torch.maximum(fused, resize_logits(self.base(xs), size))
        return resize_logits(fused, tuple(x.shape[-2:]))
