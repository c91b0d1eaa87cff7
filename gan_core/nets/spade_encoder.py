"""SPADE's image encoder (the VAE of ``--use_vae``) for the "SPADE+, Encoder" row of thesis Table 4.2
(thesis l.1161; l.1173: "we train SPADE+ with 3D noise or the image encoder"), and the reparameterisation.

Facts (NVlabs/SPADE @ fecacc9, read for facts only; CC BY-NC-SA code is not copied):

* ``models/networks/encoder.py`` (``ConvEncoder``): width ``ndf = opt.ngf``; 3x3 convs with stride 2 and padding
  ceil((3 - 1) / 2) = 1, channels 3 -> ndf -> 2ndf -> 4ndf -> 8ndf -> 8ndf, plus a sixth 8ndf -> 8ndf conv when
  crop_size >= 256; every conv wrapped by ``norm_E`` (default ``'spectralinstance'``, options/base_options.py):
  spectral norm, the conv's bias removed, then ``InstanceNorm2d(affine=False)``
  (``models/networks/normalization.py`` ``get_nonspade_norm_layer``); LeakyReLU(0.2) between the convs and after
  the last one; the input is bilinearly resized to 256 x 256 first; the 4 x 4 x 8ndf map is flattened into two
  Linear heads ``fc_mu`` and ``fc_var`` with 256 outputs (the log-variance).
* ``models/pix2pix_model.py`` ``reparameterize``: std = exp(0.5 * logvar), z = eps * std + mu, eps ~ N(0, I).
* ``options/base_options.py``: ``--z_dim`` 256; ``options/train_options.py``: ``--lambda_kld`` 0.05 (the KLD
  term is ``losses/spade.kld_loss``).

Generalisation (our choice): the number of stride-2 convs is log2(input_size / 4), so the flattened map is
always 4 x 4 and the widths are ndf * min(2^i, 8). For ``input_size = 256`` this is exactly SPADE's encoder
for crop_size >= 256 (6 convs, which covers every thesis dataset: ADE20K / COCO crop 256, Cityscapes 512).
SPADE's own crop_size < 256 branch (5 convs on a 256 input -> an 8 x 8 map) does not match its 4 x 4 ``fc_mu``;
a smaller ``input_size`` serves the tiny test configurations. Module names ``layer1..layerK.0`` (SN conv),
``fc_mu``, ``fc_var`` follow SPADE's ``net_E`` state-dict keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE

FINAL_SIZE = 4       # encoder.py: "self.so = s0 = 4" (the flattened map is 4 x 4)
MAX_WIDTH_MULT = 8   # encoder.py: widths ndf, 2ndf, 4ndf, 8ndf, 8ndf(, 8ndf)
KERNEL = 3           # encoder.py: kw = 3, stride 2, pw = ceil((kw - 1) / 2)


def encoder_widths(ndf: int, input_size: int) -> list[int]:
    """Output channels of the stride-2 convs for a square input of ``input_size`` (a power of 2 >= 8)."""
    if input_size < 2 * FINAL_SIZE or input_size & (input_size - 1):
        raise ValueError(f"encoder input_size must be a power of 2 >= {2 * FINAL_SIZE}, got {input_size}")
    n = int(math.log2(input_size // FINAL_SIZE))
    return [ndf * min(2 ** i, MAX_WIDTH_MULT) for i in range(n)]


class ConvImageEncoder(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> (mu, logvar), each (B, z_dim) (see module doc)."""

    def __init__(self, ndf: int = 64, z_dim: int = 256, input_size: int = 256):
        super().__init__()
        self.input_size = int(input_size)
        self.z_dim = int(z_dim)
        widths = encoder_widths(ndf, self.input_size)
        cin = 3
        for i, cout in enumerate(widths):
            conv = nn.Conv2d(cin, cout, KERNEL, stride=2, padding=math.ceil((KERNEL - 1) / 2), bias=False)
            # 'spectralinstance': SN conv without bias -> parameter-free instance norm (normalization.py)
            self.add_module(f"layer{i + 1}", nn.Sequential(nn.utils.spectral_norm(conv),
                                                           nn.InstanceNorm2d(cout, affine=False)))
            cin = cout
        self.num_layers = len(widths)
        flat = cin * FINAL_SIZE * FINAL_SIZE
        self.fc_mu = nn.Linear(flat, self.z_dim)
        self.fc_var = nn.Linear(flat, self.z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"the image encoder needs (B, 3, H, W) images, got {tuple(image.shape)}")
        x = image
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            # encoder.py: resized (bilinear) to 256 x 256 whatever the crop / aspect ratio
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"layer{i + 1}")(x), LRELU_SLOPE)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def standard_normal(shape: tuple[int, ...], like: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) noise on ``like``'s device / dtype, drawn from ``generator`` (on its device) when given."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + eps * exp(0.5 * logvar), eps ~ N(0, I) (pix2pix_model.py ``reparameterize``); eps is drawn from
    ``generator`` when given (on its device), so a seeded step repeats exactly."""
    std = torch.exp(0.5 * logvar)
    return mu + standard_normal(tuple(std.shape), std, generator) * std
