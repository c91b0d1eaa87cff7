"""DeepLab-V3 on a dilated timm encoder (output stride 8), with PyTorch-Encoding's head.

Widths and structure follow Encoding's ``DeepLabV3Head`` / ``FCNHead`` (reference notes,
downstream-protocols §4.2); module names follow Encoding's checkpoint layout (``head.aspp.b0..b4``,
``head.aspp.project``, ``head.block``, ``auxlayer``). The encoder is ``timm.create_model(backbone,
features_only=True, output_stride=8)``; timm ``resnest50d`` has exactly the key layout of Encoding's
``resnest50`` (notes §4.2 [VERIFIED]), so :func:`load_encoder_imagenet` maps the ImageNet file in.
Nothing is downloaded here.
"""
from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_core.errors import DataError, MissingResourceError

from .config import DeepLabConfig

_UP = {"mode": "bilinear", "align_corners": True}  # Encoding's up_kwargs


def _conv_bn_relu(cin: int, cout: int, k: int, dilation: int = 1) -> list[nn.Module]:
    pad = 0 if k == 1 else dilation
    return [nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class _AsppPooling(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.gap(x), x.shape[-2:], **_UP)


class ASPP(nn.Module):
    """1x1, three dilated 3x3 and image pooling branches, concatenated and projected (Encoding ASPP_Module)."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, int, int], dropout: float):
        super().__init__()
        self.b0 = nn.Sequential(*_conv_bn_relu(cin, cout, 1))
        self.b1 = nn.Sequential(*_conv_bn_relu(cin, cout, 3, rates[0]))
        self.b2 = nn.Sequential(*_conv_bn_relu(cin, cout, 3, rates[1]))
        self.b3 = nn.Sequential(*_conv_bn_relu(cin, cout, 3, rates[2]))
        self.b4 = _AsppPooling(cin, cout)
        self.project = nn.Sequential(*_conv_bn_relu(5 * cout, cout, 1), nn.Dropout2d(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))


class EncodingDeepLabHead(nn.Module):
    """Encoding's DeepLabV3Head: ASPP(in//8) -> 3x3 conv+BN+ReLU -> Dropout(0.1) -> 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int, cfg: DeepLabConfig):
        super().__init__()
        mid = cfg.aspp_channels or cin // 8
        self.aspp = ASPP(cin, mid, tuple(cfg.atrous_rates), cfg.aspp_dropout)
        self.block = nn.Sequential(*_conv_bn_relu(mid, mid, 3), nn.Dropout(cfg.head_dropout), nn.Conv2d(mid, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.aspp(x))


class FCNHead(nn.Module):
    """Encoding's FCNHead (aux on c3): 3x3 conv(in//4)+BN+ReLU -> Dropout(0.1) -> 1x1 classifier."""

    def __init__(self, cin: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        mid = cin // 4
        self.conv5 = nn.Sequential(*_conv_bn_relu(cin, mid, 3), nn.Dropout(dropout), nn.Conv2d(mid, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(x)


class SmpDeepLabHead(nn.Module):
    """smp's DeepLabV3 decoder (ASPP + 3x3 conv+BN+ReLU) and its 1x1 segmentation conv (notes §4.3, §5)."""

    def __init__(self, cin: int, num_classes: int, cfg: DeepLabConfig):
        super().__init__()
        from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3Decoder

        mid = cfg.aspp_channels or 256  # smp decoder_channels default
        self.decoder = DeepLabV3Decoder(in_channels=cin, out_channels=mid, atrous_rates=tuple(cfg.atrous_rates),
                                        aspp_separable=False, aspp_dropout=cfg.aspp_dropout)
        self.classifier = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.decoder([x]))


class DeepLabV3(nn.Module):
    """``forward(x)`` -> logits (B, K, H, W) at the input size; ``forward_train`` also returns the aux logits."""

    def __init__(self, cfg: DeepLabConfig, num_classes: int):
        super().__init__()
        self.backbone = timm.create_model(cfg.backbone, features_only=True, output_stride=cfg.output_stride,
                                          out_indices=(3, 4), pretrained=False)
        c3, c4 = self.backbone.feature_info.channels()
        self.num_classes = int(num_classes)
        self.head = (EncodingDeepLabHead if cfg.head == "encoding" else SmpDeepLabHead)(c4, num_classes, cfg)
        self.auxlayer = FCNHead(c3, num_classes, cfg.head_dropout) if cfg.has_aux else None

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(c3, c4) encoder features (stride ``output_stride``)."""
        c3, c4 = self.backbone(x)
        return c3, c4

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        size = x.shape[-2:]
        c3, c4 = self.features(x)
        out = F.interpolate(self.head(c4), size, **_UP)
        aux = F.interpolate(self.auxlayer(c3), size, **_UP) if self.auxlayer is not None else None
        return out, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.head(self.features(x)[1]), x.shape[-2:], **_UP)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at lr x head_lr_mult (head and aux; Encoding)."""
        mods = [self.head] + ([self.auxlayer] if self.auxlayer is not None else [])
        return [p for m in mods for p in m.parameters()]


def build_deeplab(cfg: DeepLabConfig, num_classes: int) -> DeepLabV3:
    """Build the network offline (random init; see :func:`load_encoder_imagenet`)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return DeepLabV3(cfg, num_classes)


def _weights_file(path: Path) -> Path:
    if path.is_dir():
        files = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
        if len(files) != 1:
            raise DataError(path, f"expected exactly one .pth/.pt weights file in the folder, found {len(files)}")
        return files[0]
    if not path.is_file():
        raise MissingResourceError("weights 'resnest50_encoding'", path, "fetch_resnest50_encoding")
    return path


def encoder_state_from_checkpoint(state: dict, path: Path) -> dict[str, torch.Tensor]:
    """Backbone tensors of an Encoding ImageNet file (or of a DeepLab checkpoint's ``pretrained.*``):
    ``state_dict``/``module.`` wrappers removed, the ImageNet classifier ``fc.*`` dropped."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "not a state dict of tensors")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if any(k.startswith("pretrained.") for k in state):
        state = {k[len("pretrained."):]: v for k, v in state.items() if k.startswith("pretrained.")}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_encoder_imagenet(model: DeepLabV3, path: str | Path) -> Path:
    """Load Encoding's ImageNet ``resnest50`` weights into ``model.backbone``, strictly.

    ``path`` is the .pth file or the folder holding it. Every backbone tensor must be present with the
    right shape and no other key may remain (``num_batches_tracked`` buffers may be absent). Returns the file.
    """
    file = _weights_file(Path(path))
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/format failure is a bad file
        raise DataError(file, f"cannot load with torch.load(weights_only=True): {exc}") from exc
    state = encoder_state_from_checkpoint(raw, file)
    own = model.backbone.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    bad_shape = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if missing or unexpected or bad_shape:
        raise DataError(file, f"does not match the {type(model.backbone).__name__} encoder: "
                              f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                              f"(e.g. {unexpected[:3]}), {len(bad_shape)} shape mismatches (e.g. {bad_shape[:3]})")
    model.backbone.load_state_dict(state, strict=False)
    return file
