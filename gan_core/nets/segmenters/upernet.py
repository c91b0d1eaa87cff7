"""UperNet101 of CSAILVision/semantic-segmentation-pytorch (ADE20K, 150 classes) -- the mIoU
segmenter of thesis Table 4.1 etc. for ADE20K ("UperNet101 (Xiao et al., 2018) for ADE20K",
thesis l.1123; reference notes baselines.md §4.3).

Written anew from the facts of the official repository (commit 8f27c9b; BSD-3), no code copied:

* Encoder ``arch_encoder: resnet101`` (config/ade20k-resnet101-upernet.yaml): ResNet-101 with the
  *deep stem* of mit_semseg/models/resnet.py -- three 3x3 convs 3->64 (stride 2), 64->64, 64->128
  (``conv1/bn1, conv2/bn2, conv3/bn3``), 3x3/2 max-pool, then torchvision-layout bottleneck layers
  ``layer1..layer4`` (3, 4, 23, 3 blocks; widths 64..512, x4) with the first layer's input width 128;
  not dilated; no avgpool/fc (``models.Resnet`` drops them). Returns the four stage outputs.
* Decoder ``arch_decoder: upernet`` (``fc_dim 2048``, ``fpn_dim 512``, pool scales (1, 2, 3, 6),
  ``fpn_inplanes (256, 512, 1024, 2048)``): PPM on C5 (adaptive avg-pool -> bilinear back to C5's
  size -> 1x1 conv 512 + BN + ReLU, concatenated with C5 -> ``ppm_last_conv`` 3x3 conv-BN-ReLU to 512),
  FPN lateral 1x1 ``fpn_in.{0,1,2}`` and 3x3 ``fpn_out.{0,1,2}.0``, top-down bilinear addition, fusion of
  the four levels at 1/4 resolution, ``conv_last`` = 3x3 conv-BN-ReLU (4*512 -> 512) + 1x1 conv to 150.
* Released files ``encoder_epoch_50.pth`` / ``decoder_epoch_50.pth`` are plain state dicts of the
  encoder and decoder modules (``train.py`` saves ``net_encoder.state_dict()`` / ``net_decoder...``);
  here they load into :attr:`UperNet101.encoder` and :attr:`UperNet101.decoder` (registry.py).
  Key names checked against the repository source; NOT checked against the released files
  themselves (no network access here) -- the strict load will say so if they differ.

``forward`` returns pre-softmax logits bilinearly upsampled to the input size (the official test
upsamples the 1/4-resolution output to ``segSize`` before the softmax; argmax is unaffected).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import EXPANSION, bottleneck_layer, conv_bn, resize_logits

RESNET101_BLOCKS = (3, 4, 23, 3)
ADE20K_CLASSES = 150
PPM_SCALES = (1, 2, 3, 6)
FPN_INPLANES = (256, 512, 1024, 2048)
FPN_DIM = 512
PPM_DIM = 512


class DeepStemResNet(nn.Module):
    """ResNet-101 encoder with the 3-conv deep stem (keys ``conv1.weight`` ... ``layer4.2.bn3.*``)."""

    def __init__(self, blocks: tuple[int, ...] = RESNET101_BLOCKS):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = 128
        for i, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            self.add_module(f"layer{i + 1}", bottleneck_layer(in_ch, planes, n, stride=1 if i == 0 else 2))
            in_ch = planes * EXPANSION

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.maxpool(F.relu(self.bn3(self.conv3(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


class UPerNetHead(nn.Module):
    """PPM + FPN decoder with the official parameter names (see module docstring)."""

    def __init__(self, num_classes: int = ADE20K_CLASSES, fc_dim: int = 2048,
                 pool_scales: tuple[int, ...] = PPM_SCALES, fpn_inplanes: tuple[int, ...] = FPN_INPLANES,
                 fpn_dim: int = FPN_DIM):
        super().__init__()
        self.pool_scales = tuple(pool_scales)
        self.ppm_conv = nn.ModuleList(conv_bn(fc_dim, PPM_DIM, 1) for _ in pool_scales)
        self.ppm_last_conv = conv_bn(fc_dim + len(pool_scales) * PPM_DIM, fpn_dim, 3)
        self.fpn_in = nn.ModuleList(conv_bn(c, fpn_dim, 1) for c in fpn_inplanes[:-1])
        # fpn_out.i is a Sequential holding one conv-BN-ReLU (keys fpn_out.i.0.0.weight ...).
        self.fpn_out = nn.ModuleList(nn.Sequential(conv_bn(fpn_dim, fpn_dim, 3)) for _ in fpn_inplanes[:-1])
        self.conv_last = nn.Sequential(conv_bn(len(fpn_inplanes) * fpn_dim, fpn_dim, 3),
                                       nn.Conv2d(fpn_dim, num_classes, 1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        c5 = feats[-1]
        size5 = tuple(c5.shape[-2:])
        pyramid = [c5] + [conv(resize_logits(F.adaptive_avg_pool2d(c5, s), size5))
                          for s, conv in zip(self.pool_scales, self.ppm_conv)]
        f = self.ppm_last_conv(torch.cat(pyramid, 1))
        outs = [f]
        for i in reversed(range(len(feats) - 1)):
            lateral = self.fpn_in[i](feats[i])
            f = lateral + resize_logits(f, tuple(lateral.shape[-2:]))
            outs.append(self.fpn_out[i](f))
        outs.reverse()  # finest first
        size = tuple(outs[0].shape[-2:])
        return self.conv_last(torch.cat([outs[0]] + [resize_logits(o, size) for o in outs[1:]], 1))


class UperNet101(nn.Module):
    """Encoder + decoder; ``forward(x)`` -> (B, 150, H, W) logits at the input resolution."""

    def __init__(self, num_classes: int = ADE20K_CLASSES):
        super().__init__()
        self.encoder = DeepStemResNet()
        self.decoder = UPerNetHead(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_logits(self.decoder(self.encoder(x)), tuple(x.shape[-2:]))
