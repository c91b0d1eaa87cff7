"""SIV-GAN (thesis Ch. 5) and OSMIS (thesis Ch. 6): generator and content/layout discriminator.

Architecture facts (widths, auto-configuration, MSG inputs, MCA) follow the reference notes
(official one-shot-synthesis implementation, §2.2-2.4); the parameter counts at 256x256 equal
the ones listed there (tests/test_osmis_model.py). The code is written anew.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .blocks import ResBlockDown, ResBlockUp, init_conv_weights, sn_conv
from .osmis_config import OSMISConfig

# reference notes §2.2 (recommended configuration): noise side in [3, 7]; g in 5..9 ->
# (number of D blocks, number of D low-level blocks).
NOISE_RANGE = (3, 7)
BLOCKS_BY_G = {5: (6, 2), 6: (7, 3), 7: (7, 3), 8: (7, 4), 9: (8, 4)}
MIN_IMAGE_SIDE = NOISE_RANGE[0] * 2 ** (min(BLOCKS_BY_G) - 1)  # 48 px: smallest trainable side

G_MULTIPLIERS = (8, 8, 8, 8, 8, 8, 8, 4, 2, 1)  # reference notes §2.3, last g+1 entries used
D_MULTIPLIERS = (1, 2, 4, 8, 8, 8, 8, 8, 8)     # reference notes §2.4, first D+1 entries used
MSG_RATIO = 8                                   # reference notes §2.4: from_rgb gives C/8 channels


@dataclass
class Architecture:
    resolution: tuple[int, int]   # training (H, W) = noise_shape * 2^(g-1)
    noise_shape: tuple[int, int]
    n_blocks_G: int
    n_blocks_D: int
    n_low_level: int

    def to_dict(self) -> dict:
        return {"resolution": list(self.resolution), "noise_shape": list(self.noise_shape),
                "n_blocks_G": self.n_blocks_G, "n_blocks_D": self.n_blocks_D, "n_low_level": self.n_low_level}

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        return cls(tuple(d["resolution"]), tuple(d["noise_shape"]), int(d["n_blocks_G"]),
                   int(d["n_blocks_D"]), int(d["n_low_level"]))


def bound_size(height: float, width: float, max_size: int) -> tuple[int, int]:
    """Scale (H, W) so that the longer side is at most ``max_size`` (truncating, as the official loader)."""
    if width > max_size:
        height, width = height * max_size / width, max_size
    if height > max_size:
        height, width = max_size, width * max_size / height
    return int(height), int(width)


def auto_architecture(height: int, width: int, max_size: int = 1024, n_low_level: int | None = None,
                      noise_shape: tuple[int, int] | None = None) -> Architecture:
    """The recommended configuration of reference notes §2.2.

    The smallest g in 5..9 such that each side, divided by 2^(g'-1), lies in [3, 7] for some
    g' <= g (the official rule checks the two sides separately and cumulatively). The noise is
    round(side / 2^(g-1)) and the training resolution noise * 2^(g-1).

    ``n_low_level`` overrides the number of D blocks before the branching (total D depth kept,
    thesis l.1583); ``noise_shape`` overrides the noise map (thesis l.1456), which sets the
    training resolution to noise_shape * 2^(g-1) with g from the auto rule.
    """
    h, w = bound_size(height, width, max_size)
    ok_h = ok_w = False
    g_sel = None
    for g in sorted(BLOCKS_BY_G):
        m = 2 ** (g - 1)
        ok_h = ok_h or NOISE_RANGE[0] <= h / m <= NOISE_RANGE[1]
        ok_w = ok_w or NOISE_RANGE[0] <= w / m <= NOISE_RANGE[1]
        if ok_h and ok_w:
            g_sel = g
            break
    if g_sel is None:
        raise ConfigError(f"no generator depth g in 5..9 gives a noise size in {list(NOISE_RANGE)} for an "
                          f"image of {h}x{w} (after bounding by max_size={max_size}); each side must be >= "
                          f"{MIN_IMAGE_SIDE} px and the aspect ratio moderate")
    m = 2 ** (g_sel - 1)
    noise = (max(1, round(h / m)), max(1, round(w / m)))
    if noise_shape is not None:
        if len(noise_shape) != 2 or min(noise_shape) < 1:
            raise ConfigError(f"noise_shape must be (h, w) >= 1, got {noise_shape}")
        noise = (int(noise_shape[0]), int(noise_shape[1]))
    n_d, n_d0 = BLOCKS_BY_G[g_sel]
    if n_low_level is not None:
        if not 1 <= n_low_level < n_d:
            raise ConfigError(f"n_low_level={n_low_level} must lie in [1, {n_d - 1}] (D has {n_d} blocks)")
        n_d0 = n_low_level
    return Architecture((noise[0] * m, noise[1] * m), noise, g_sel, n_d, n_d0)


# --------------------------------------------------------------------------------------------
# Straight-through mask hardening (thesis Eq. 6.2, 6.3)
# --------------------------------------------------------------------------------------------
class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, soft: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:  # noqa: D401
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def harden_mask(soft: torch.Tensor, bernoulli: bool) -> torch.Tensor:
    """T(y) of thesis Eq. 6.3: per-channel Bernoulli samples (warm-up) or one_hot(argmax)."""
    with torch.no_grad():
        if bernoulli:  # reference notes §2.4: probabilities clamped to [0.001, 0.999], channels independent
            return torch.bernoulli(soft.float().clamp(0.001, 0.999)).to(soft.dtype)
        idx = soft.argmax(dim=1, keepdim=True)
        return torch.zeros_like(soft).scatter_(1, idx, 1.0)


def mask_argmax(soft: torch.Tensor, iteration: int = 0, warmup: int = 0) -> torch.Tensor:
    """MaskArgmax(y) = y + T(y) - sg[y] (thesis Eq. 6.2): the forward value is exactly T(y), the
    gradient w.r.t. ``soft`` is the identity. T is Bernoulli while ``iteration < warmup`` (Eq. 6.3)."""
    return _StraightThrough.apply(soft, harden_mask(soft, iteration < warmup))


def masked_content_attention(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """MCA (thesis Eq. 6.4): AvgPool(F(x) x mask_k) for each mask channel k, averaged over *all*
    pixels. Returns (K*B, C, 1, 1), channel-major (rows k*B..k*B+B-1 belong to channel k)."""
    b, c, h, w = features.shape
    v = torch.einsum("bchw,bkhw->kbc", features, masks.to(features.dtype)) / (h * w)
    return v.reshape(-1, c, 1, 1)


# --------------------------------------------------------------------------------------------
# Feature augmentation (thesis l.1426; real inputs only)
# --------------------------------------------------------------------------------------------
FA_CHANNEL_RANGE = (0.10, 0.30)  # reference notes §2.4: 10-30% of the channels
FA_RECT_RANGE = (0.10, 0.50)     # reference notes §2.4: rectangle sides 10-50% of the map


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Move a small CPU-generated tensor (random FA / DA parameters) to ``device`` without a host-device
    synchronisation: a plain ``.to('cuda')`` from pageable memory waits for the whole CUDA stream, which
    would stall the host once per call. On CUDA the tensor is pinned and copied asynchronously (the
    caching host allocator keeps the pinned block alive until the copy has run)."""
    device = torch.device(device)
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _uniform(n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n) * (hi - lo) + lo


def content_fa(v: torch.Tensor, rows: int, prob: float) -> torch.Tensor:
    """Content FA on pooled vectors v (R, C, 1, 1); only the first ``rows`` rows are augmented
    (with masks: the background vectors). Random numbers come from the CPU generator.

    * mix (prob p, once per call): for each pair (2i, 2i+1) swap a random 10-30% of channels;
    * drop (prob p, once per call): zero a random 10-30% of channels of all augmented rows.
    """
    c = v.shape[1]
    head, tail = v[:rows], v[rows:]
    n_pairs = rows // 2
    if n_pairs > 0 and torch.rand(()) < prob:
        num = (c * _uniform(n_pairs, *FA_CHANNEL_RANGE)).long()
        rank = torch.rand(n_pairs, c).argsort(dim=1).argsort(dim=1)
        sel = to_device(rank < num[:, None], v.device)[:, :, None, None]
        a, b = head[0:2 * n_pairs:2], head[1:2 * n_pairs:2]
        mixed = torch.stack([torch.where(sel, b, a), torch.where(sel, a, b)], dim=1).flatten(0, 1)
        head = torch.cat([mixed, head[2 * n_pairs:]], dim=0)
    if rows > 0 and torch.rand(()) < prob:
        num = int(c * float(_uniform(1, *FA_CHANNEL_RANGE)))
        keep = torch.ones(c)
        keep[torch.randperm(c)[:num]] = 0.0
        head = head * to_device(keep, v.device).to(v.dtype)[None, :, None, None]
    return torch.cat([head, tail], dim=0) if tail.shape[0] else head


def _random_rectangles(n: int, h: int, w: int, device) -> torch.Tensor:
    """(n, 1, h, w) boolean rectangles with sides 10-50% of the map, fully inside."""
    rh = (h * _uniform(n, *FA_RECT_RANGE)).long().clamp(min=1)
    rw = (w * _uniform(n, *FA_RECT_RANGE)).long().clamp(min=1)
    y0 = (torch.rand(n) * (h - rh + 1).float()).long()
    x0 = (torch.rand(n) * (w - rw + 1).float()).long()
    ys, xs = torch.arange(h), torch.arange(w)
    in_y = (ys[None] >= y0[:, None]) & (ys[None] < (y0 + rh)[:, None])
    in_x = (xs[None] >= x0[:, None]) & (xs[None] < (x0 + rw)[:, None])
    return to_device((in_y[:, :, None] & in_x[:, None, :])[:, None], device)


def layout_fa(y: torch.Tensor, prob: float, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Layout FA on the low-level features y (B, C, H, W): for each pair (2i, 2i+1), with prob p,
    swap a random rectangle between the two samples (CutMix-like, thesis l.1426; the official code
    swaps both ways, so both samples of a pair are augmented).

    With masks (B, K, H, W) only rectangles free of objects (channels >= 1) in both samples are
    swapped -- a simplified version of the official mask-aware layout FA (reference notes §2.4).
    """
    b, _, h, w = y.shape
    n_pairs = b // 2
    if n_pairs == 0:
        return y
    active = to_device(torch.rand(n_pairs) < prob, y.device)[:, None, None, None]
    rect = _random_rectangles(n_pairs, h, w, y.device) & active
    a, bb = y[0:2 * n_pairs:2], y[1:2 * n_pairs:2]
    if masks is not None:
        obj = masks[:, 1:].sum(dim=1, keepdim=True) > 0  # (B, 1, H, W)
        hit = (obj[0:2 * n_pairs:2] | obj[1:2 * n_pairs:2]) & rect
        rect = rect & ~hit.flatten(1).any(dim=1)[:, None, None, None]
    mixed = torch.stack([torch.where(rect, bb, a), torch.where(rect, a, bb)], dim=1).flatten(0, 1)
    return torch.cat([mixed, y[2 * n_pairs:]], dim=0)


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------
@dataclass
class GeneratorOutput:
    images: list[torch.Tensor]                 # MSG outputs, low -> high resolution, tanh
    features: list[torch.Tensor] = field(default_factory=list)  # tanh(block output) for DR
    masks: torch.Tensor | None = None          # softmax (B, N, H, W) when masks are on


class OSMISGenerator(nn.Module):
    """Noise (B, noise_dim, 1, 1) -> learned ConvTranspose projection to noise_shape -> g residual
    up-blocks (the first without upsampling) with an RGB head after each (MSG), and with masks a
    Conv3x3 + softmax mask head on the last block's features (thesis l.1711; reference notes §2.3)."""

    def __init__(self, cfg: OSMISConfig, arch: Architecture):
        super().__init__()
        self.noise_dim = cfg.noise_dim
        ch = [int(m * cfg.ch_G) for m in G_MULTIPLIERS][-(arch.n_blocks_G + 1):]
        # Official: ConvTranspose2d(noise_dim, C, kernel=noise_shape), no SN, default init
        # (the thesis says the latent is "broadcasted" to 3x5, thesis l.1456).
        self.first_linear = nn.ConvTranspose2d(cfg.noise_dim, ch[0], tuple(arch.noise_shape))
        self.body = nn.ModuleList(ResBlockUp(ch[i], ch[i + 1], upsample=i > 0) for i in range(arch.n_blocks_G))
        self.rgb_converters = nn.ModuleList(sn_conv(ch[i + 1], 3, 3) for i in range(arch.n_blocks_G))
        self.mask_converter = (nn.Conv2d(ch[-1], cfg.num_mask_classes, 3, padding=1)
                               if cfg.with_masks else None)
        # "d_m" (thesis l.1798): D_m's gradients reach only the mask synthesis branch, so the mask head
        # reads detached features (D_m sees detached images, see MaskDiscriminator); the masks feed
        # nothing else in that mode.
        self.detach_mask_features = cfg.supervision == "d_m"
        init_conv_weights(self)

    def forward(self, z: torch.Tensor, features: bool = True) -> GeneratorOutput:
        x = self.first_linear(z.reshape(z.shape[0], self.noise_dim, 1, 1))
        images, feats = [], []
        for block, to_rgb in zip(self.body, self.rgb_converters):
            x = block(x)
            images.append(torch.tanh(to_rgb(x)))
            if features:
                feats.append(torch.tanh(x))
        masks = None
        if self.mask_converter is not None:
            x_m = x.detach() if self.detach_mask_features else x
            masks = torch.softmax(self.mask_converter(x_m).float(), dim=1)
        return GeneratorOutput(images, feats, masks)


# --------------------------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------------------------
@dataclass
class DiscriminatorOutput:
    low_level: list[torch.Tensor]
    content: list[torch.Tensor]
    layout: list[torch.Tensor]
    n_classes: int = 0      # > 0: content logits are (K*B, K+1, 1, 1) object logits (MCA)
    n_blocks: int = 0       # total number of D blocks (for the "official" loss normalisation)
    mask_d: list[torch.Tensor] = field(default_factory=list)  # D_m decisions ("d_m" supervision only)


def _content_global(d: "OSMISDiscriminator", y, masks, real, iteration):
    """SIV-GAN content input: global average pooling (thesis Sec. 5.2.1). Masks are ignored."""
    return y.mean(dim=(2, 3), keepdim=True), y.shape[0]


def _content_mca(d: "OSMISDiscriminator", y, masks, real, iteration):
    """OSMIS content input: masked content attention (thesis Eq. 6.4). Fake masks are hardened
    with MaskArgmax (Eq. 6.2/6.3) after a nearest resize, as in the official code."""
    m = d.prepare_mask(masks, y.shape[-2:], real, iteration)
    return masked_content_attention(y, m), y.shape[0]  # FA augments only the first B (background) rows


@dataclass(frozen=True)
class MaskSupervision:
    """How D supervises G's mask branch (thesis Table 6.3, l.1798).

    ``content``: builder of the content-branch input; ``n_logits(K)``: content logits per vector;
    ``concat``: masks concatenated to every MSG input image of D; ``projection``: projection term on
    the last D_low-level decision; ``d_m``: separate discriminator D_m on (image, mask).
    """
    content: Callable
    n_logits: Callable[[int], int]
    concat: bool = False
    projection: bool = False
    d_m: bool = False


MASK_SUPERVISION: dict[str, MaskSupervision] = {
    "none": MaskSupervision(_content_global, lambda k: 1),
    "mca": MaskSupervision(_content_mca, lambda k: k + 1),
    "concat": MaskSupervision(_content_global, lambda k: 1, concat=True),
    "projection": MaskSupervision(_content_global, lambda k: 1, projection=True),
    "d_m": MaskSupervision(_content_global, lambda k: 1, d_m=True),
}
# Backwards-compatible view: name -> (content builder, number of content logits).
CONTENT_HEADS: dict[str, tuple[Callable, Callable[[int], int]]] = {
    k: (v.content, v.n_logits) for k, v in MASK_SUPERVISION.items()}


class MaskDiscriminator(nn.Module):
    """D_m of the SemanticGAN baseline (thesis l.1798; Li et al. 2021a): a separate discriminator on
    the channel concatenation of the full-resolution image and its mask.

    The thesis does not specify its architecture; we use the standard (unbranched) SIV-GAN D body:
    an SN-conv3x3 input layer and ``n_blocks`` residual down-blocks with the D widths of reference
    notes §2.4, each followed by a 1x1 patch decision (losses aggregated as thesis Eq. 5.1). The
    image is detached: D_m's gradients reach G only through the mask (thesis: "propagate its
    gradients only to the generator's mask synthesis branch").
    """

    def __init__(self, n_classes: int, n_blocks: int, ch_D: int):
        super().__init__()
        ch = [int(m * ch_D) for m in D_MULTIPLIERS][: n_blocks + 1]
        self.from_input = sn_conv(3 + n_classes, ch[0], 3)
        self.body = nn.ModuleList(ResBlockDown(ch[i], ch[i + 1], 3, downsample=True, first=i == 0)
                                  for i in range(n_blocks))
        self.final = nn.ModuleList(sn_conv(ch[i + 1], 1, 1) for i in range(n_blocks))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        h = self.from_input(torch.cat([image.detach(), mask.to(image.dtype)], dim=1))
        out = []
        for block, dec in zip(self.body, self.final):
            h = block(h)
            out.append(dec(h))
        return out


class OSMISDiscriminator(nn.Module):
    """Low-level branch (MSG lin_cat inputs, a patch decision per block), then a content branch
    (1x1 blocks on pooled or MCA vectors) and a layout branch (squeezed to 1 channel).
    Thesis Sec. 5.2.1, 6.2.3; widths per reference notes §2.4. The mask supervision variants of
    thesis Table 6.3 are selected by ``cfg.mask_supervision`` (see :class:`MaskSupervision`)."""

    def __init__(self, cfg: OSMISConfig, arch: Architecture):
        super().__init__()
        n_d, n_ll = arch.n_blocks_D, arch.n_low_level
        self.n_low_level, self.n_blocks = n_ll, n_d
        self.with_masks = cfg.with_masks
        self.mask_supervision = cfg.supervision
        spec = MASK_SUPERVISION[self.mask_supervision]
        self.spec = spec
        self.n_classes = cfg.num_mask_classes if self.mask_supervision == "mca" else 0
        self.bernoulli_warmup = cfg.bernoulli_warmup
        self.fa = cfg.feature_augmentation
        self.prob_fa_content, self.prob_fa_layout = cfg.prob_fa_content, cfg.prob_fa_layout
        ch = [int(m * cfg.ch_D) for m in D_MULTIPLIERS][: n_d + 1]
        if cfg.with_masks:  # reference notes §2.4: wider content/layout widths with masks
            for i in range(n_ll + 1, n_d):
                ch[i] *= 2
        in_img = 3 + (cfg.num_mask_classes if spec.concat else 0)  # "concat": image + mask channels
        self.rgb_to_features = nn.ModuleList()
        self.body_ll, self.final_ll = nn.ModuleList(), nn.ModuleList()
        for i in range(n_ll):
            msg = ch[0] if i == 0 else ch[i] // MSG_RATIO
            in_ch = ch[0] if i == 0 else ch[i] + msg
            self.rgb_to_features.append(sn_conv(in_img, msg, 3))
            self.body_ll.append(ResBlockDown(in_ch, ch[i + 1], 3, downsample=True, first=i == 0))
            self.final_ll.append(sn_conv(ch[i + 1], 1, 1))
        # "projection" (Miyato & Koyama 2018, thesis l.1798): pixel-wise linear projection of the mask
        # to the width of D_low-level's output, spectral-normalised as the projection embedding of
        # Miyato & Koyama; its inner product with the features is added to the last low-level decision.
        self.projection = sn_conv(cfg.num_mask_classes, ch[n_ll], 1, bias=False) if spec.projection else None
        self.d_m = MaskDiscriminator(cfg.num_mask_classes, n_d, cfg.ch_D) if spec.d_m else None
        self.content_input, n_logits = spec.content, spec.n_logits
        n_out = n_logits(cfg.num_mask_classes)
        self.body_content, self.final_content = nn.ModuleList(), nn.ModuleList()
        self.body_layout, self.final_layout = nn.ModuleList(), nn.ModuleList()
        if cfg.branches in ("both", "content"):
            for i in range(n_ll, n_d):
                self.body_content.append(ResBlockDown(ch[i], ch[i + 1], 1, downsample=False))
                self.final_content.append(sn_conv(ch[i + 1], n_out, 1))
        if cfg.branches in ("both", "layout"):
            for i in range(n_ll, n_d):
                self.body_layout.append(ResBlockDown(ch[n_ll] if i == n_ll else 1, 1, 3, downsample=True))
                self.final_layout.append(sn_conv(1, 1, 1))
        init_conv_weights(self)

    def prepare_mask(self, masks: torch.Tensor, size, real: bool, iteration: int) -> torch.Tensor:
        """Nearest-resize ``masks`` to ``size``; fake (generated, soft) masks are then hardened with
        MaskArgmax (thesis Eq. 6.2 / 6.3), so D always sees discrete masks (thesis l.1716)."""
        m = masks if tuple(masks.shape[-2:]) == tuple(size) else F.interpolate(masks, size=size, mode="nearest")
        return m if real else mask_argmax(m, iteration, self.bernoulli_warmup)

    def _needs_masks(self, masks) -> None:
        if masks is None:
            raise ValueError(f"mask_supervision={self.mask_supervision!r} needs masks in D's forward pass")

    def forward(self, images: list[torch.Tensor], masks: torch.Tensor | None = None, real: bool = False,
                iteration: int = 0) -> DiscriminatorOutput:
        """``images``: low -> high resolution, at least ``n_low_level`` scales (the last ones are used).
        ``masks``: (B, K, H, W) one-hot (real) or soft (fake). Feature augmentation only if ``real``."""
        spec = self.spec
        hard_full = None
        if spec.concat or spec.d_m:
            self._needs_masks(masks)
            hard_full = self.prepare_mask(masks, images[-1].shape[-2:], real, iteration)

        def rgb(i: int) -> torch.Tensor:
            x = images[-1 - i]
            if spec.concat:  # the hard mask (nearest-resized to this scale) joins the image channels
                x = torch.cat([x, self.prepare_mask(hard_full, x.shape[-2:], True, iteration).to(x.dtype)], dim=1)
            return self.rgb_to_features[i](x)

        y = rgb(0)
        out_ll = []
        for i, (block, dec) in enumerate(zip(self.body_ll, self.final_ll)):
            if i > 0:
                y = torch.cat([y, rgb(i)], dim=1)
            y = block(y)
            out_ll.append(dec(y))
        if self.projection is not None:  # D(x, m) = psi(phi(x)) + <phi(x), V m> per pixel
            self._needs_masks(masks)
            m = self.prepare_mask(masks, y.shape[-2:], real, iteration)
            out_ll[-1] = out_ll[-1] + (y * self.projection(m.to(y.dtype))).sum(dim=1, keepdim=True)
        out_m = self.d_m(images[-1], hard_full) if self.d_m is not None else []
        augment = real and self.fa
        out_c, out_l = [], []
        if len(self.body_content):
            v, rows = self.content_input(self, y, masks, real, iteration)
            if augment:
                v = content_fa(v, rows, self.prob_fa_content)
            for block, dec in zip(self.body_content, self.final_content):
                v = block(v)
                out_c.append(dec(v))
        if len(self.body_layout):
            t = y
            if augment:
                small = None
                if masks is not None and self.with_masks:
                    small = F.interpolate(masks, size=y.shape[-2:], mode="nearest")
                t = layout_fa(y, self.prob_fa_layout, small)
            for block, dec in zip(self.body_layout, self.final_layout):
                t = block(t)
                out_l.append(dec(t))
        return DiscriminatorOutput(out_ll, out_c, out_l, self.n_classes, self.n_blocks, out_m)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def min_image_side() -> int:
    return MIN_IMAGE_SIDE

