"""Space-time memory network (STM, Oh et al. 2019), written anew with the official checkpoint's names.

Architecture (reference notes downstream-protocols §2.1; block internals read from the public repository
seoungwugoh/STM ``model.py`` for facts only):

* ``Encoder_M`` / ``Encoder_Q``: torchvision ResNet conv1, bn1, layer1-3 kept as ``conv1``, ``bn1``, ``res2``,
  ``res3``, ``res4`` (res4 at stride 16), with registered buffers ``mean``/``std`` (ImageNet statistics; inputs
  are RGB in [0, 1]). ``Encoder_M`` adds ``conv1_m`` and ``conv1_o`` (1 -> 64, 7x7, stride 2, padding 3, no
  bias) for the object mask and the mask of all other objects; the three conv1 outputs are summed before bn1.
* ``KV_M_r4`` / ``KV_Q_r4``: ``Key`` and ``Value`` 3x3 convolutions (1024 -> 128 and 1024 -> 512).
* Memory read: affinity = memory keys . query keys / sqrt(key channels), softmax over all T*H*W memory
  locations, values summed with these weights, concatenated with the query value (512 + 512 = 1024).
* ``Decoder(256)``: ``convFM`` (1024 -> 256, 3x3), ``ResMM`` residual block, refine blocks ``RF3`` (res3 skip,
  1/16 -> 1/8) and ``RF2`` (res2 skip, 1/8 -> 1/4), ``pred2`` (256 -> 2, 3x3) and a x4 bilinear upsampling.
  A residual block = x (+ 3x3 downsample conv if the shape changes) + conv2(relu(conv1(relu(x)))), 3x3
  convolutions with bias; a refine block = ResMM(ResFS(convFS(skip)) + bilinear x2 of the coarser map).
* Objects are a batch: each object is encoded with its own mask and the other objects' union; the per-object
  foreground probabilities are merged by ``soft_aggregate`` (K = 11 channels: background + 10 objects).

Official checkpoint (reference notes §2.1): saved from ``nn.DataParallel`` (``module.`` prefix), 558 state
entries = 296 parameter tensors + 172 BatchNorm running mean/var + 86 BatchNorm ``num_batches_tracked`` + 4
``mean``/``std`` buffers; 38.93 M parameters. ``load_stm_weights`` strips the prefix and loads strictly.

Not official: ``backbone="resnet18"`` and channel sizes other than (128, 512, 256) exist for the tiny preset
(a small STM trained from scratch on CPU); the module names stay the same, so one loader serves both.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from gan_core.errors import DataError

from .config import BACKBONES, MAX_OBJECTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_CHANNELS = MAX_OBJECTS + 1  # K = 11
STRIDE = 16
# channels of (res2, res3, res4) = torchvision layer1..3 outputs
BACKBONE_CHANNELS = {"resnet50": (256, 512, 1024), "resnet18": (64, 128, 256)}


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)


class Encoder(nn.Module):
    """ResNet stem + layer1-3 (as res2-res4); with ``with_masks`` the memory encoder's mask convolutions."""

    def __init__(self, backbone: str = "resnet50", with_masks: bool = False):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if with_masks:
            self.conv1_m = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.conv1_o = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        resnet = getattr(torchvision.models, backbone)(weights=None)  # weights come from the STM file
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.res2, self.res3, self.res4 = resnet.layer1, resnet.layer2, resnet.layer3
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None, other: torch.Tensor | None = None):
        """image (B,3,H,W) RGB in [0,1]; mask/other (B,H,W) in [0,1] (memory encoder only).

        Returns r4 (1/16), r3 (1/8), r2 (1/4)."""
        x = self.conv1((image - self.mean) / self.std)
        if mask is not None:
            x = x + self.conv1_m(mask[:, None].to(x.dtype)) + self.conv1_o(other[:, None].to(x.dtype))
        x = self.maxpool(self.relu(self.bn1(x)))
        r2 = self.res2(x)
        r3 = self.res3(r2)
        r4 = self.res4(r3)
        return r4, r3, r2


class KeyValue(nn.Module):
    def __init__(self, c_in: int, key_dim: int, value_dim: int):
        super().__init__()
        self.Key = conv3x3(c_in, key_dim)
        self.Value = conv3x3(c_in, value_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.Key(x), self.Value(x)


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions (3x3 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int | None = None):
        super().__init__()
        c_out = c_in if c_out is None else c_out
        self.downsample = None if c_in == c_out else conv3x3(c_in, c_out)
        self.conv1 = conv3x3(c_in, c_out)
        self.conv2 = conv3x3(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        return (x if self.downsample is None else self.downsample(x)) + r


class Refine(nn.Module):
    """Skip feature -> convFS -> ResFS, plus the x2 bilinearly upsampled coarser map, then ResMM."""

    def __init__(self, c_skip: int, dim: int):
        super().__init__()
        self.convFS = conv3x3(c_skip, dim)
        self.ResFS = ResBlock(dim)
        self.ResMM = ResBlock(dim)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        s = self.ResFS(self.convFS(skip))
        up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        return self.ResMM(s + up)


class Decoder(nn.Module):
    def __init__(self, dim: int, c_in: int, c_r3: int, c_r2: int):
        super().__init__()
        self.convFM = conv3x3(c_in, dim)
        self.ResMM = ResBlock(dim)
        self.RF3 = Refine(c_r3, dim)
        self.RF2 = Refine(c_r2, dim)
        self.pred2 = conv3x3(dim, 2)

    def forward(self, m4: torch.Tensor, r3: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
        """Two-channel (background, object) logits at the input resolution."""
        m = self.ResMM(self.convFM(m4))
        m = self.RF3(r3, m)
        m = self.RF2(r2, m)
        p = self.pred2(F.relu(m))
        return F.interpolate(p, scale_factor=4, mode="bilinear", align_corners=False)


def memory_read(mem_keys: torch.Tensor, mem_values: torch.Tensor, q_key: torch.Tensor) -> torch.Tensor:
    """Attention read of the memory, in fp32.

    mem_keys (N,Ck,T,h,w), mem_values (N,Cv,T,h,w), q_key (N,Ck,h,w) -> (N,Cv,h,w). Weights = softmax over
    the T*h*w memory locations of (memory key . query key) / sqrt(Ck).
    """
    n, ck, t, h, w = mem_keys.shape
    mk = mem_keys.float().reshape(n, ck, t * h * w)
    qk = q_key.float().reshape(n, ck, h * w)
    with torch.autocast(device_type=mem_keys.device.type, enabled=False):
        affinity = torch.bmm(mk.transpose(1, 2), qk) / math.sqrt(ck)  # (N, THW, hw)
        weights = F.softmax(affinity, dim=1)
        read = torch.bmm(mem_values.float().reshape(n, mem_values.shape[1], t * h * w), weights)
    return read.reshape(n, -1, h, w)


def soft_aggregate(ps: torch.Tensor, num_channels: int = NUM_CHANNELS) -> torch.Tensor:
    """Per-object foreground probabilities (N,H,W) -> logits (K,H,W) of background + objects.

    Background probability = prod_i (1 - p_i); unused channels have probability 0; each probability is
    clamped to [1e-7, 1 - 1e-7] and turned into log-odds (official ``Soft_aggregation``)."""
    n = ps.shape[0]
    if n + 1 > num_channels:
        raise ValueError(f"{n} objects do not fit {num_channels} channels")
    em = ps.new_zeros((num_channels,) + tuple(ps.shape[1:]))
    em[0] = torch.prod(1 - ps, dim=0)
    em[1 : n + 1] = ps
    em = em.clamp(1e-7, 1 - 1e-7)
    return torch.log(em / (1 - em))


class STM(nn.Module):
    """STM with the official parameter names. Inputs of ``memorize``/``segment`` must have H, W divisible by
    16 (``inference.pad_to_multiple``)."""

    def __init__(self, backbone: str = "resnet50", key_dim: int = 128, value_dim: int = 512,
                 decoder_dim: int = 256):
        super().__init__()
        c_r2, c_r3, c_r4 = BACKBONE_CHANNELS[backbone]
        self.backbone, self.key_dim, self.value_dim, self.decoder_dim = backbone, key_dim, value_dim, decoder_dim
        self.Encoder_M = Encoder(backbone, with_masks=True)
        self.Encoder_Q = Encoder(backbone)
        self.KV_M_r4 = KeyValue(c_r4, key_dim, value_dim)
        self.KV_Q_r4 = KeyValue(c_r4, key_dim, value_dim)
        self.Decoder = Decoder(decoder_dim, 2 * value_dim, c_r3, c_r2)

    def memorize(self, frame: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory key/value of one frame for N objects.

        frame (1,3,H,W) RGB in [0,1]; masks (N,H,W) soft or hard object masks (channels 1..N, no background).
        Returns keys (N,Ck,1,h,w) and values (N,Cv,1,h,w). Object i is encoded with its mask and the union of
        the other objects' masks (sum clamped to [0, 1])."""
        n = masks.shape[0]
        other = (masks.sum(dim=0, keepdim=True) - masks).clamp(0, 1)
        r4, _, _ = self.Encoder_M(frame.expand(n, -1, -1, -1), masks, other)
        k, v = self.KV_M_r4(r4)
        return k.unsqueeze(2), v.unsqueeze(2)

    def segment(self, frame: torch.Tensor, mem_keys: torch.Tensor, mem_values: torch.Tensor) -> torch.Tensor:
        """Per-object foreground probabilities (N,H,W) of a query frame (1,3,H,W) given the memory
        (N,Ck,T,h,w)/(N,Cv,T,h,w)."""
        n = mem_keys.shape[0]
        r4, r3, r2 = self.Encoder_Q(frame)
        k, v = self.KV_Q_r4(r4)
        read = memory_read(mem_keys, mem_values, k.expand(n, -1, -1, -1)).to(v.dtype)
        m4 = torch.cat([read, v.expand(n, -1, -1, -1)], dim=1)
        logits = self.Decoder(m4, r3.expand(n, -1, -1, -1), r2.expand(n, -1, -1, -1))
        return F.softmax(logits.float(), dim=1)[:, 1]


# ------------------------------------------------------------------------------------------- loading
PREFIX = "module."


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """Remove a DataParallel ``module.`` prefix (from every key, or from none)."""
    keys = list(state)
    if keys and all(k.startswith(prefix) for k in keys):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def architecture_of(state: Mapping[str, torch.Tensor], path: str | Path = "<state>") -> dict:
    """STM constructor arguments read from a state dict's shapes (ResNet-50 blocks have a 1x1 conv1)."""
    try:
        block_conv = state["Encoder_Q.res2.0.conv1.weight"]
        key, value = state["KV_Q_r4.Key.weight"], state["KV_Q_r4.Value.weight"]
        dec = state["Decoder.convFM.weight"]
    except KeyError as exc:
        raise DataError(path, f"not an STM state dict (missing {exc.args[0]!r})") from exc
    backbone = "resnet50" if block_conv.shape[-1] == 1 else "resnet18"
    return {"backbone": backbone, "key_dim": int(key.shape[0]), "value_dim": int(value.shape[0]),
            "decoder_dim": int(dec.shape[0])}


def load_stm_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "STM weights file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or pickled objects beyond tensors
        raise DataError(path, f"cannot load as a tensor-only state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(path, f"expected a state dict, got {type(state).__name__}")
    return strip_prefix(state)


def load_stm_weights(path: str | Path) -> STM:
    """Build the STM that matches the file (official ResNet-50 or a tiny one) and load it strictly.

    The official ``STM_weights.pth`` carries ``module.`` prefixes (reference notes §2.1); they are stripped.
    A state without ``num_batches_tracked`` entries also loads (BatchNorm fills them in for old versions)."""
    state = load_stm_state(path)
    model = STM(**architecture_of(state, path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"state dict does not match the STM layout: {exc}") from exc
    return model.eval()
