"""PatchGAN discriminators of the SPADE+ baseline and of the discriminator ablations (thesis Tables 4.8-4.10,
appendix Table 12), and the label-map encodings of thesis Table 4.10.

Backbones (each has ``forward_features(x) -> (logits, features)`` and ``feat_channels`` = channels of the
last feature, which feeds the output conv):

* :class:`NLayerPatchGAN` - SPADE's single PatchGAN (reference notes §3): 4x4 convs, channels 64 -> 128 ->
  256 -> 512 (stride 2, the last hidden layer stride 1, padding 2) -> 4x4 conv to the output channels;
  "spectralinstance": spectral norm + InstanceNorm (no bias before the norm) on the hidden layers after the
  first; the first and the output conv are plain convs; LeakyReLU 0.2. Features = the 4 hidden outputs.
  Parameter count of the 2-scale ADE20K D: 5.84M (reference notes §3), checked in the tests.
* :class:`ResNetPatchGAN` - "a ResNet-based discriminator, corresponding to the encoder of the U-Net shaped
  OASIS discriminator" (thesis l.1300, l.3259): the OASIS D down blocks (``oasis.ResBlockD``, widths
  ``d_channels``) followed by a 1x1 conv to the output channels (our choice: the thesis gives no output layer;
  a 1x1 conv mirrors the U-Net's ``layer_up_last``). Features = the block outputs.
* the OASIS U-Net (``oasis.OASISDiscriminator``), built with other input/output widths where needed.

:class:`SemanticDiscriminator` wraps one backbone per scale and applies the label encoding
(thesis l.1320-1322, Table 4.10):

* ``concat``: input = label map ⊕ image (SPADE; one-hot label first), 1 output channel (hinge loss);
* ``projection``: image only; logits = psi(phi) + <E y, phi> per pixel (Miyato & Koyama 2018 conditioned
  "on the label map instead of a single label", thesis l.1322), with phi the last feature map, E a class
  embedding (1x1 conv on the one-hot map, no bias) and y the label map area-averaged to phi's size; where the
  output map is not phi's size (PatchGAN's last 4x4 conv adds one pixel) the projection term is resized
  bilinearly to it (our choice);
* ``n_plus_1`` / ``n_plus_1_balanced``: image only, N+1 output channels (channel 0 = fake), trained with
  ``losses/oasis.py`` (unbalanced / class-balanced).

Multi-scale (SPADE ``MultiscaleDiscriminator``, reference notes §3): the input of scale i+1 is the input of
scale i average-pooled with a 3x3 window, stride 2, padding 1, ``count_include_pad=False``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE
from .oasis import ResBlockD, init_oasis_weights

LABEL_ENCODINGS = ("concat", "projection", "n_plus_1", "n_plus_1_balanced")


def downsample_scale(x: torch.Tensor) -> torch.Tensor:
    """SPADE multi-scale input pyramid step (reference notes §3)."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


class NLayerPatchGAN(nn.Module):
    """SPADE's PatchGAN (see module doc). Keys: model0.*, ..., model{n_layers}.*."""

    def __init__(self, in_channels: int, out_channels: int = 1, ndf: int = 64, n_layers: int = 4,
                 norm: str = "instance", spectral: bool = True):
        super().__init__()
        if n_layers < 1:
            raise ValueError("n_layers must be >= 1")
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")
        kw, pad = 4, 2  # padw = ceil((kw - 1) / 2)
        self.n_layers = n_layers
        self.add_module("model0", nn.Sequential(nn.Conv2d(in_channels, ndf, kw, stride=2, padding=pad),
                                                nn.LeakyReLU(LRELU_SLOPE)))
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=pad, bias=norm == "none")
            layers: list[nn.Module] = [nn.utils.spectral_norm(conv) if spectral else conv]
            if norm == "instance":
                layers.append(nn.InstanceNorm2d(nf, affine=False))
            layers.append(nn.LeakyReLU(LRELU_SLOPE))
            self.add_module(f"model{n}", nn.Sequential(*layers))
        self.add_module(f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, out_channels, kw, stride=1, padding=pad)))
        self.feat_channels = nf

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for n in range(self.n_layers):
            x = getattr(self, f"model{n}")(x)
            feats.append(x)
        return getattr(self, f"model{self.n_layers}")(x), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class ResNetPatchGAN(nn.Module):
    """Encoder of the OASIS U-Net D + 1x1 output conv (see module doc). Keys: body_down.i.*, head.*."""

    def __init__(self, in_channels: int, out_channels: int, channels: tuple[int, ...]):
        super().__init__()
        ch = (int(in_channels),) + tuple(int(c) for c in channels)
        self.body_down = nn.ModuleList(ResBlockD(ch[i], ch[i + 1], "down", first=(i == 0))
                                       for i in range(len(ch) - 1))
        self.head = nn.Conv2d(ch[-1], out_channels, 1)
        self.feat_channels = ch[-1]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f = 2 ** len(self.body_down)
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"ResNet-PatchGAN input sides must be divisible by {f}, got {tuple(x.shape[-2:])}")
        feats = []
        for block in self.body_down:
            x = block(x)
            feats.append(x)
        return self.head(x), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


@dataclass
class DOutput:
    """What :class:`SemanticDiscriminator` returns: per scale, the logits (B, 1 or N+1, h, w) and the
    intermediate features (for feature matching, final logits excluded)."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]

    @property
    def num_scales(self) -> int:
        return len(self.logits)

    def split(self, n: int) -> tuple["DOutput", "DOutput"]:
        """Split a D output of a concatenated batch into its first ``n`` samples and the rest (SPADE feeds
        fake and real through D in one batch, reference notes §3)."""
        first = DOutput([t[:n] for t in self.logits], [[f[:n] for f in fs] for fs in self.features])
        rest = DOutput([t[n:] for t in self.logits], [[f[n:] for f in fs] for fs in self.features])
        return first, rest


class SemanticDiscriminator(nn.Module):
    """One backbone per scale plus a label encoding (see module doc). Keys: nets.i.* (the backbone of scale
    i), embeddings.i.weight (projection only). ``forward(image, label)`` -> :class:`DOutput`; ``label`` is the
    one-hot map (B, N, H, W) at the image resolution."""

    def __init__(self, nets: list[nn.Module], encoding: str, n_classes: int):
        super().__init__()
        if encoding not in LABEL_ENCODINGS:
            raise ValueError(f"label encoding must be one of {LABEL_ENCODINGS}, got {encoding!r}")
        if not nets:
            raise ValueError("SemanticDiscriminator needs at least one backbone")
        self.encoding, self.n_classes = encoding, int(n_classes)
        self.nets = nn.ModuleList(nets)
        if encoding == "projection":
            self.embeddings = nn.ModuleList(nn.Conv2d(self.n_classes, net.feat_channels, 1, bias=False)
                                            for net in nets)
        init_oasis_weights(self)  # xavier-normal gain 0.02 as SPADE and OASIS (reference notes §1.5, §3)

    @property
    def num_scales(self) -> int:
        return len(self.nets)

    @property
    def out_channels(self) -> int:
        return self.n_classes + 1 if self.encoding.startswith("n_plus_1") else 1

    def forward(self, image: torch.Tensor, label: torch.Tensor) -> DOutput:
        if label.dim() != 4 or label.shape[1] != self.n_classes or label.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"label must be one-hot (B, {self.n_classes}, H, W) at the image size "
                             f"{tuple(image.shape[-2:])}, got {tuple(label.shape)}")
        label = label.to(image.dtype)
        x = torch.cat((label, image), dim=1) if self.encoding == "concat" else image
        lab = label
        logits, feats = [], []
        for i, net in enumerate(self.nets):
            if i > 0:
                x = downsample_scale(x)
                lab = downsample_scale(lab)
            out, f = net.forward_features(x)
            if self.encoding == "projection":
                phi = f[-1]
                y = F.adaptive_avg_pool2d(lab, phi.shape[-2:])  # class fractions per feature pixel
                proj = (self.embeddings[i](y) * phi).sum(dim=1, keepdim=True)
                if proj.shape[-2:] != out.shape[-2:]:
                    proj = F.interpolate(proj, size=out.shape[-2:], mode="bilinear", align_corners=False)
                out = out + proj
            logits.append(out)
            feats.append(f)
        return DOutput(logits, feats)
