"""SPADE / SPADE+ objectives (thesis Chapter 4 baseline; facts from reference notes §3, NVlabs/SPADE read for
facts only): hinge GAN loss, GAN feature-matching loss and the VGG19 perceptual loss.

* Hinge (SPADE ``gan_mode='hinge'``): D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(t)))); G: -mean(D(G(t))).
  For a multi-scale D the per-scale losses are averaged over the scales.
* Feature matching (SPADE ``GAN_Feat`` loss): sum over scales i and intermediate layers j (the final output
  excluded) of L1(D_ij(fake), D_ij(real).detach()) / num_scales; multiplied by lambda_feat = 10 by the caller.
* VGG perceptual: VGG19 ``features`` cut after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (layer indices
  [0,2), [2,7), [7,12), [12,21), [21,30) of torchvision's numbering), weights 1/32, 1/16, 1/8, 1/4, 1, L1 per
  layer, target features detached; multiplied by lambda_vgg = 10 by the caller (reference notes §1.4, §3).
  SPADE feeds the generator's [-1, 1] images to VGG without ImageNet normalisation (``input_norm="none"``,
  official); ``input_norm="imagenet"`` maps to [0, 1] and standardises (torchvision's convention).
* KLD of SPADE's image encoder (``--use_vae``, the "SPADE+, Encoder" row of thesis Table 4.2):
  -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), SUMMED over the batch and the z dimensions (NVlabs/SPADE
  models/networks/loss.py ``KLDLoss``; not a mean, so it grows with the batch size, as in SPADE); multiplied by
  lambda_kld = 0.05 (options/train_options.py) by the caller. Under DDP every rank sums over its own share of
  the batch and the gradients are averaged over the ranks, as SPADE's DataParallel averages its per-GPU losses
  (pix2pix_trainer.py: ``sum(g_losses.values()).mean()``).

The VGG network is built here without downloading anything: its weights come from a local torchvision
``vgg19`` state-dict file (``vgg19-dcbb9e9d.pth``) passed by the caller (fetched through the manifest);
without a file the weights stay random (tests only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DataError, MissingResourceError

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)  # reference notes §1.4 / §3
# torchvision VGG19 ("E") ``features`` layout up to relu5_1 (index 29): conv widths, "M" = max-pool
_VGG19_UP_TO_RELU5_1 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_SLICE_ENDS = (2, 7, 12, 21, 30)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (exclusive ends)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_list(x: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [x] if isinstance(x, torch.Tensor) else list(x)


def hinge_d_real(logits: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """mean(relu(1 - D(x))) averaged over the scales."""
    items = _as_list(logits)
    return sum(F.relu(1.0 - t.float()).mean() for t in items) / len(items)


def hinge_d_fake(logits: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """mean(relu(1 + D(G(t)))) averaged over the scales."""
    items = _as_list(logits)
    return sum(F.relu(1.0 + t.float()).mean() for t in items) / len(items)


def hinge_d_loss(real_logits, fake_logits) -> torch.Tensor:
    """SPADE D hinge loss: D_real + D_fake."""
    return hinge_d_real(real_logits) + hinge_d_fake(fake_logits)


def hinge_g_loss(fake_logits: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """SPADE G hinge loss: -mean(D(G(t))) averaged over the scales."""
    items = _as_list(fake_logits)
    return sum(-t.float().mean() for t in items) / len(items)


def kld_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over all elements (SPADE ``KLDLoss``; module doc)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def feature_matching_loss(fake_features: Sequence[Sequence[torch.Tensor]],
                          real_features: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Unweighted SPADE feature matching: sum_i sum_j L1(fake_ij, real_ij.detach()) / num_scales, where the
    lists hold the intermediate features only (no final logits)."""
    if len(fake_features) != len(real_features) or not fake_features:
        raise ValueError("feature matching needs the same non-zero number of scales for fake and real")
    total = None
    for f_scale, r_scale in zip(fake_features, real_features):
        if len(f_scale) != len(r_scale):
            raise ValueError("feature matching: fake and real have different numbers of layers")
        for f, r in zip(f_scale, r_scale):
            term = F.l1_loss(f.float(), r.detach().float())
            total = term if total is None else total + term
    if total is None:
        raise ValueError("feature matching: no intermediate features")
    return total / len(fake_features)


class VGG19Features(nn.Module):
    """VGG19 ``features`` up to relu5_1, returning the 5 SPADE slices; frozen (no gradients to its weights).
    Keys ``features.{i}.weight/bias`` with torchvision's indices, so a torchvision ``vgg19`` state dict loads
    (its deeper layers and classifier are ignored)."""

    def __init__(self, weights_path: str | Path | None = None, input_norm: str = "none"):
        super().__init__()
        if input_norm not in ("none", "imagenet"):
            raise ValueError(f"input_norm must be 'none' or 'imagenet', got {input_norm!r}")
        self.input_norm = input_norm
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG19_UP_TO_RELU5_1:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU()]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)
        assert len(self.features) == _SLICE_ENDS[-1]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights_path is not None:
            self.load_torchvision_weights(weights_path)
        self.requires_grad_(False)
        self.eval()

    def load_torchvision_weights(self, path: str | Path) -> None:
        """Load a torchvision ``vgg19`` state dict (``weights_only=True``); errors name the file."""
        path = Path(path)
        if not path.is_file():
            raise MissingResourceError("VGG19 weights (torchvision vgg19-dcbb9e9d.pth)", path, "fetch_tv_vgg19",
                                       "(manifest entry tv_vgg19)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - corrupt / non-torch file
            raise DataError(path, f"cannot read as a torch state dict: {exc}") from exc
        if not isinstance(state, dict):
            raise DataError(path, "expected a state dict (mapping of tensors)")
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise DataError(path, f"not a torchvision vgg19 state dict: missing {missing[:4]}")
        bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise DataError(path, f"shape mismatch for {bad[:4]} (a vgg16 file instead of vgg19?)")
        self.load_state_dict({k: state[k] for k in own})

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # always eval: no dropout / norm state, a fixed feature extractor

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.input_norm == "imagenet":
            x = ((x + 1) / 2 - self.mean) / self.std
        outs, start = [], 0
        for end in _SLICE_ENDS:
            for i in range(start, end):
                x = self.features[i](x)
            outs.append(x)
            start = end
        return outs


class VGGLoss(nn.Module):
    """Unweighted-by-lambda SPADE VGG loss: sum_k w_k L1(VGG_k(x), VGG_k(y).detach())."""

    def __init__(self, vgg: VGG19Features, layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS):
        super().__init__()
        if len(layer_weights) != len(_SLICE_ENDS):
            raise ValueError(f"VGG loss needs {len(_SLICE_ENDS)} layer weights")
        self.vgg = vgg
        self.layer_weights = tuple(float(w) for w in layer_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.vgg(x), self.vgg(y)
        return sum(w * F.l1_loss(a.float(), b.detach().float()) for w, a, b in zip(self.layer_weights, fx, fy))
