"""PSPNet feature extractor of RePRI: deep-base ResNet-50 (dilated) + PPM + bottleneck (+ unused classifier).

Module and parameter names match the official checkpoints (reference notes downstream-protocols §3.1), so
``best.pth['state_dict']`` loads strictly once the DDP ``module.`` prefix is stripped:

* ``layer0`` = Sequential(conv1 3->64 s2, bn1, relu, conv2 64->64, bn2, relu, conv3 64->128, bn3, relu,
  maxpool 3/2) -> parameter keys ``layer0.{0,1,3,4,6,7}.*``;
* ``layer1..4`` = ResNet-50 bottlenecks [3,4,6,3] (``conv1/bn1/conv2/bn2/conv3/bn3/downsample.{0,1}``),
  stride on the 3x3 conv, starting from 128 input channels; layer3 dilation 2 and layer4 dilation 4, both
  stride 1 (output stride 8);
* ``ppm.features.{0..3}`` = Sequential(AdaptiveAvgPool(bin), Conv1x1 2048->512 no bias, BN, ReLU) for bins
  [1,2,3,6], upsampled bilinearly (align_corners=True) and concatenated with the input (4096 channels);
* ``bottleneck`` = Sequential(Conv3x3 4096->512 no bias, BN, ReLU, Dropout2d(0.1));
* ``classifier`` = Conv1x1 512->61 (60 base classes + background; only used in training).

:meth:`PSPNet.extract_features` (layer0..4 -> ppm -> bottleneck) gives 512x53x53 for a 417x417 input.

``PSPNetArch.tiny()`` is a narrow variant (stem 8/8/16, bottleneck planes 4..32, one block per stage,
bottleneck 32 channels) for CPU tests and the tiny preset only; its numbers mean nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_core.errors import DataError

EXPANSION = 4


@dataclass(frozen=True)
class PSPNetArch:
    """Widths of the network; defaults = official RePRI COCO model (reference notes §3.1)."""

    stem_width: int = 64          # conv1/conv2 width; conv3 gives 2*stem_width = 128
    base_planes: int = 64         # layer1 planes (64,128,256,512 x expansion 4 -> 256..2048)
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)   # ResNet-50
    bins: tuple[int, ...] = (1, 2, 3, 6)
    bottleneck_dim: int = 512
    num_classes: int = 61         # 60 training classes + background (COCO-20i)
    dropout: float = 0.1

    @classmethod
    def tiny(cls) -> "PSPNetArch":
        """Narrow widths for CPU tests (not a thesis configuration)."""
        return cls(stem_width=8, base_planes=4, blocks=(1, 1, 1, 1), bottleneck_dim=32, num_classes=61)

    @property
    def feature_dim(self) -> int:
        return self.base_planes * 8 * EXPANSION


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample: bool = False):
        super().__init__()
        out = planes * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


def _stage(inplanes: int, planes: int, n: int, stride: int, dilation: int) -> nn.Sequential:
    down = stride != 1 or inplanes != planes * EXPANSION
    blocks = [Bottleneck(inplanes, planes, stride, dilation, down)]
    blocks += [Bottleneck(planes * EXPANSION, planes, 1, dilation) for _ in range(n - 1)]
    return nn.Sequential(*blocks)


class PPM(nn.Module):
    def __init__(self, in_dim: int, bins: tuple[int, ...]):
        super().__init__()
        red = in_dim // len(bins)
        self.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_dim, red, 1, bias=False), nn.BatchNorm2d(red),
                          nn.ReLU(inplace=True))
            for b in bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return torch.cat([x] + [F.interpolate(f(x), size, mode="bilinear", align_corners=True)
                                for f in self.features], 1)


class PSPNet(nn.Module):
    def __init__(self, arch: PSPNetArch = PSPNetArch()):
        super().__init__()
        self.arch = arch
        s, p = arch.stem_width, arch.base_planes
        relu = nn.ReLU(inplace=True)
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, s, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(s), relu,
            nn.Conv2d(s, s, 3, padding=1, bias=False), nn.BatchNorm2d(s), relu,
            nn.Conv2d(s, 2 * s, 3, padding=1, bias=False), nn.BatchNorm2d(2 * s), relu,
            nn.MaxPool2d(3, stride=2, padding=1))
        b = arch.blocks
        self.layer1 = _stage(2 * s, p, b[0], 1, 1)
        self.layer2 = _stage(p * EXPANSION, 2 * p, b[1], 2, 1)
        self.layer3 = _stage(2 * p * EXPANSION, 4 * p, b[2], 1, 2)   # dilated, stride 1
        self.layer4 = _stage(4 * p * EXPANSION, 8 * p, b[3], 1, 4)   # dilated, stride 1
        fea = arch.feature_dim
        self.ppm = PPM(fea, arch.bins)
        self.bottleneck = nn.Sequential(nn.Conv2d(2 * fea, arch.bottleneck_dim, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(arch.bottleneck_dim), nn.ReLU(inplace=True),
                                        nn.Dropout2d(arch.dropout))
        self.classifier = nn.Conv2d(arch.bottleneck_dim, arch.num_classes, 1)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N,3,H,W) -> features (N, bottleneck_dim, h, w), output stride 8."""
        for layer in (self.layer0, self.layer1, self.layer2, self.layer3, self.layer4, self.ppm, self.bottleneck):
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training-time head (base-class logits at the input size); unused by RePRI inference."""
        logits = self.classifier(self.extract_features(x))
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=True)


def feature_size(image_size: int) -> int:
    """Spatial size of extract_features for a square input: stride-2 conv, stride-2 maxpool, stride-2 layer2."""
    s = image_size
    for _ in range(3):
        s = (s + 2 - 3) // 2 + 1
    return s


def strip_prefix(state: dict, prefix: str = "module.") -> dict:
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def arch_from_state_dict(state: dict, path: str | Path = "<state dict>") -> PSPNetArch:
    """Read the widths and block counts from a (prefix-stripped) state dict."""
    try:
        blocks = tuple(1 + max(int(m.group(1)) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k)))
                       for i in range(1, 5))
        return PSPNetArch(stem_width=int(state["layer0.0.weight"].shape[0]),
                          base_planes=int(state["layer1.0.conv1.weight"].shape[0]),
                          blocks=blocks,  # type: ignore[arg-type]
                          bottleneck_dim=int(state["bottleneck.0.weight"].shape[0]),
                          num_classes=int(state["classifier.weight"].shape[0]))
    except (KeyError, ValueError, AttributeError) as exc:
        raise DataError(path, f"not a RePRI PSPNet state dict (missing or malformed key: {exc})") from exc


def load_pspnet(path: str | Path, map_location: str | torch.device = "cpu") -> PSPNet:
    """Load an official RePRI checkpoint (``{'epoch', 'state_dict', 'optimizer'}``, keys with ``module.``) or a
    plain state dict, strictly; returns the network in eval mode. Bad files raise DataError."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(path, f"cannot be read as a weights-only torch checkpoint ({exc})") from exc
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise DataError(path, "checkpoint holds no state dict")
    state = strip_prefix(state)
    net = PSPNet(arch_from_state_dict(state, path))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"state dict does not match the RePRI PSPNet: {exc}") from exc
    return net.eval()
