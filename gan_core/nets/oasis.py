"""OASIS generator and discriminator (thesis Chapter 4), state-dict compatible with the released
checkpoints (reference notes §1.2, §1.3, §1.8).

Generator: label map (one-hot, N channels) concatenated with a 3D noise map (M = z_dim channels) -> ``fc``
(3x3 conv at the start resolution) -> 6 SPADE residual blocks with nearest x2 upsampling between them ->
LReLU -> ``conv_img`` -> tanh. The noise+label tensor conditions ``fc`` and every SPADE layer
(thesis l.1093). Noise channels come FIRST in the concatenation, as in the released weights.

3D noise sampling (``sample_noise``), thesis l.1093 and l.1242:
* "image": one M-vector per image broadcast over H x W ("for simplicity during training we sample the 3D
  noise tensor globally, i.e. per-channel, replicating each channel value spatially"; the official code);
* "region": one M-vector per semantic region (class present in the label map) of each image ("one can
  sample the noise ... locally, per-segment", l.1093);
* "pixel": an independent M-vector at every pixel ("... or per-pixel", l.1093);
* "mixed": an image-level vector everywhere, except a second image-level vector inside ``region_mask``
  (the local resampling of Fig. 4.10: "a noise vector can be re-sampled only for specified image
  regions", l.1242).
``resample_region`` edits an existing noise map only inside a mask (local editing, l.1242).

Discriminator: U-Net with the N+1-class segmentation head; channel 0 = fake, class c -> channel c+1
(reference notes §1.3/§1.4).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE, refresh_spectral_norm, sn_conv
from .oasis_config import OASISConfig
# SPADE / SPADEResBlock are shared with the SPADE+ baseline (nets/spade.py); re-exported here.
from .spade_blocks import SPADE, SPADENormSpec, SPADEResBlock  # noqa: F401

NOISE_MODES = ("image", "region", "pixel", "mixed")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def init_oasis_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Xavier-normal (gain 0.02) conv weights and zero biases (reference notes §1.5 "Weight init"); for
    spectral-normalised convs the ``weight_orig`` parameter is initialised, then the SN power iteration is
    run to convergence so that eval-mode outputs of an untrained network are well scaled."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            with torch.no_grad():
                nn.init.xavier_normal_(w, gain=gain)
                if m.bias is not None:
                    m.bias.zero_()
    refresh_spectral_norm(module)


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------
def spade_spec(cfg: OASISConfig) -> SPADENormSpec:
    """The SPADE layers of the OASIS generator: conditioned on noise ⊕ label (thesis l.1093)."""
    return SPADENormSpec(label_nc=cfg.label_input_nc, hidden=cfg.spade_hidden, kernel=cfg.spade_ks,
                         param_free_norm=cfg.param_free_norm)


def _as_mask(region_mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,1,H,W) float mask at the spatial size of ``like`` (nearest resize)."""
    m = region_mask
    if m.dim() == 3:
        m = m.unsqueeze(1)
    if m.dim() != 4 or m.shape[1] != 1:
        raise ValueError(f"region_mask must be (B,H,W) or (B,1,H,W), got {tuple(region_mask.shape)}")
    m = m.to(device=like.device, dtype=like.dtype)
    if m.shape[-2:] != like.shape[-2:]:
        m = F.interpolate(m, size=like.shape[-2:], mode="nearest")
    return m.expand(like.shape[0], 1, *like.shape[-2:])


def _randn(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise on ``like``'s device/dtype; drawn on the generator's device when one is given."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def resample_region(z_map: torch.Tensor, region_mask: torch.Tensor, mode: str = "image",
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Return ``z_map`` with new noise only where ``region_mask`` is set (thesis l.1242, Fig. 4.10 rows 2/4:
    "a noise vector can be re-sampled only for specified image regions"). ``mode="image"``: one new vector
    per image shared by the whole region; ``"pixel"``: new noise at every masked pixel."""
    b, m, h, w = z_map.shape
    mask = _as_mask(region_mask, z_map)
    if mode == "image":
        new = _randn((b, m, 1, 1), z_map, generator).expand(b, m, h, w)
    elif mode == "pixel":
        new = _randn((b, m, h, w), z_map, generator)
    else:
        raise ValueError(f"resample_region mode must be 'image' or 'pixel', got {mode!r}")
    return mask * new + (1 - mask) * z_map


def sample_noise(label: torch.Tensor, z_dim: int, mode: str = "image", region_mask: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A (B, z_dim, H, W) 3D noise map for the one-hot ``label`` (B, N, H, W); modes in the module doc."""
    b, n, h, w = label.shape
    if mode == "image":
        return _randn((b, z_dim, 1, 1), label, generator).expand(b, z_dim, h, w)
    if mode == "pixel":
        return _randn((b, z_dim, h, w), label, generator)
    if mode == "region":
        per_class = _randn((b, n, z_dim), label, generator)  # one vector per (image, class); absent classes unused
        return torch.einsum("bnhw,bnz->bzhw", label, per_class)
    if mode == "mixed":
        if region_mask is None:
            raise ValueError("noise_mode='mixed' needs region_mask")
        base = _randn((b, z_dim, 1, 1), label, generator).expand(b, z_dim, h, w)
        return resample_region(base, region_mask, "image", generator)
    raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")


def noise_label_conditioning(label: torch.Tensor, semantic_nc: int, z_dim: int | None,
                             z: torch.Tensor | None = None, noise_mode: str = "image",
                             region_mask: torch.Tensor | None = None,
                             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(noise ⊕ label, noise map) for a generator conditioned on 3D noise (thesis l.1093); noise channels
    first, as in the released weights. ``z_dim=None``: no 3D noise, returns (label, None). ``z``: None
    (sampled by ``noise_mode``), a (B, z_dim) vector (broadcast, image level) or a (B, z_dim, H, W) map."""
    if label.dim() != 4 or label.shape[1] != semantic_nc:
        raise ValueError(f"label must be one-hot (B, {semantic_nc}, H, W), got {tuple(label.shape)}")
    if z_dim is None:
        return label, None
    b, _, h, w = label.shape
    if z is None:
        z_map = sample_noise(label, z_dim, noise_mode, region_mask, generator)
    elif z.dim() == 2:
        z_map = z.to(label).view(b, z_dim, 1, 1).expand(b, z_dim, h, w)
    elif z.dim() == 4:
        z_map = z.to(label)
        if z_map.shape[1] != z_dim:
            raise ValueError(f"z map must have {z_dim} channels, got {z_map.shape[1]}")
        if z_map.shape[-2:] != (h, w):
            z_map = F.interpolate(z_map, size=(h, w), mode="nearest")
    else:
        raise ValueError(f"z must be (B, z_dim) or (B, z_dim, H, W), got {tuple(z.shape)}")
    return torch.cat((z_map, label), dim=1), z_map


class OASISGenerator(nn.Module):
    """OASIS G (reference notes §1.2). Keys: fc.*, body.i.{conv_0,conv_1,conv_s,norm_0,norm_1,norm_s}.*,
    conv_img.*."""

    def __init__(self, cfg: OASISConfig):
        super().__init__()
        self.cfg = cfg
        ch = [w * cfg.ch_G for w in (16, 16, 16, 8, 4, 2, 1)]  # reference notes §1.2
        self.channels = ch
        self.fc = nn.Conv2d(cfg.label_input_nc, ch[0], 3, padding=1)
        spec = spade_spec(cfg)
        self.body = nn.ModuleList(SPADEResBlock(ch[i], ch[i + 1], spec) for i in range(cfg.num_res_blocks))
        self.conv_img = nn.Conv2d(ch[-1], 3, 3, padding=1)
        init_oasis_weights(self)

    def conditioning(self, label: torch.Tensor, z: torch.Tensor | None = None, noise_mode: str = "image",
                     region_mask: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(noise ⊕ label, noise map); see :func:`noise_label_conditioning`."""
        return noise_label_conditioning(label, self.cfg.semantic_nc, None if self.cfg.no_3dnoise else self.cfg.z_dim,
                                        z, noise_mode, region_mask, generator)

    def forward(self, label: torch.Tensor, z: torch.Tensor | None = None, noise_mode: str = "image",
                region_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                return_noise: bool = False):
        """Images in [-1, 1] at ``cfg.output_size``; with ``return_noise`` also the 3D noise map used."""
        seg, z_map = self.conditioning(label, z, noise_mode, region_mask, generator)
        x = self.fc(F.interpolate(seg, size=self.cfg.init_size, mode="nearest"))
        for i, block in enumerate(self.body):
            x = block(x, seg)
            if i < len(self.body) - 1:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        img = torch.tanh(self.conv_img(F.leaky_relu(x, LRELU_SLOPE)))
        return (img, z_map) if return_noise else img


# --------------------------------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------------------------------
class ResBlockD(nn.Module):
    """residual_block_D layout (reference notes §1.3): conv1 = Sequential([LReLU], [Upsample], SN-conv3x3)
    so the conv sits at index 0 (first block), 1 (down) or 2 (up); conv2 = Sequential(LReLU, SN-conv3x3);
    AvgPool2 after conv2 for down blocks; shortcut SN-conv1x1 (with bias) if fin != fout, ordered
    first: pool -> conv_s; other down: conv_s -> pool; up: upsample -> conv_s."""

    def __init__(self, fin: int, fout: int, direction: str, first: bool = False):
        super().__init__()
        if direction not in ("down", "up"):
            raise ValueError(direction)
        self.direction, self.first = direction, first
        self.learned_shortcut = fin != fout
        layers: list[nn.Module] = []
        if not first:
            layers.append(nn.LeakyReLU(LRELU_SLOPE))
            if direction == "up":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(sn_conv(fin, fout, 3))
        self.conv1 = nn.Sequential(*layers)
        self.conv2 = nn.Sequential(nn.LeakyReLU(LRELU_SLOPE), sn_conv(fout, fout, 3))
        if self.learned_shortcut:
            self.conv_s = sn_conv(fin, fout, 1, bias=True)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        sc = self.conv_s if self.learned_shortcut else (lambda t: t)
        if self.direction == "up":
            return sc(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.first:
            return sc(F.avg_pool2d(x, 2))
        return F.avg_pool2d(sc(x), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv2(self.conv1(x))
        if self.direction == "down":
            dx = F.avg_pool2d(dx, 2)
        return self._shortcut(x) + dx


class OASISDiscriminator(nn.Module):
    """U-Net segmenter with N+1 output channels at the input resolution (reference notes §1.3).
    Keys: body_down.i.*, body_up.i.*, layer_up_last.*. Input sides must be divisible by 2^len(d_channels).

    ``in_channels`` / ``out_channels`` (defaults 3 and N+1 = the OASIS D) let the label-encoding ablation of
    thesis Table 4.10 reuse the same U-Net: input concatenation (3 + N inputs, 1 output) and projection
    (1 output); see ``nets/semantic_gan_factory.py``."""

    def __init__(self, cfg: OASISConfig, in_channels: int = 3, out_channels: int | None = None):
        super().__init__()
        self.cfg = cfg
        ch = (int(in_channels),) + tuple(cfg.d_channels)
        n = len(ch) - 1
        self.body_down = nn.ModuleList(ResBlockD(ch[i], ch[i + 1], "down", first=(i == 0)) for i in range(n))
        up = [ResBlockD(ch[-1], ch[-2], "up")]
        up += [ResBlockD(2 * ch[-1 - i], ch[-2 - i], "up") for i in range(1, n - 1)]
        up.append(ResBlockD(2 * ch[1], cfg.d_last_channels, "up"))
        self.body_up = nn.ModuleList(up)
        out_channels = cfg.semantic_nc + 1 if out_channels is None else int(out_channels)
        self.layer_up_last = nn.Conv2d(cfg.d_last_channels, out_channels, 1)
        self.feat_channels = cfg.d_last_channels  # channels of the input of layer_up_last
        init_oasis_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, N+1, H, W) logits; channel 0 = fake."""
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, features): the outputs of every encoder and decoder block, in order; the last feature
        is the input of ``layer_up_last`` (used by feature matching and by the projection head)."""
        f = 2 ** len(self.body_down)
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"OASIS D input sides must be divisible by {f}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.body_down:
            x = block(x)
            skips.append(x)
        feats = list(skips)
        x = self.body_up[0](x)
        feats.append(x)
        for i in range(1, len(self.body_up)):
            x = self.body_up[i](torch.cat((skips[-i - 1], x), dim=1))
            feats.append(x)
        return self.layer_up_last(x), feats
