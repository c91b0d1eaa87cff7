"""OSVOS network (Caelles et al., 2017), weight-compatible with the official PyTorch parent model.

Architecture (reference notes downstream-protocols.md §1.1): a VGG16 trunk in 5 ``stages`` with ceil-mode
max-pools; for stages 2..5 a side branch ``side_prep`` (3x3 conv C->16), ``score_dsn`` (1x1 conv 16->1),
bilinear-initialised transposed convolutions ``upscale`` (16->16) and ``upscale_`` (1->1) with kernel 2^(i+2)
and stride 2^(i+1) (i = 0..3), a centre crop back to the input size, and ``fuse`` (1x1 conv 64->1) over the
four upsampled 16-channel side features. ``forward`` returns ``[side_out_2, ..., side_out_5, fuse]`` (logits).

Module and parameter names equal the official checkpoint layout (52 keys), so the official parent loads with
``strict=True`` at ``width=1.0``. ``width`` scales the trunk channels for tiny CPU runs; the side branches
keep their official 16 channels.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from gan_core.errors import DataError, MissingResourceError

# VGG16 stages: "M" = 2x2 max-pool (ceil mode), numbers = 3x3 conv + ReLU output channels.
VGG16_STAGES: tuple[tuple, ...] = (
    (64, 64),
    ("M", 128, 128),
    ("M", 256, 256, 256),
    ("M", 512, 512, 512),
    ("M", 512, 512, 512),
)
SIDE_CHANNELS = 16


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _make_stage(spec: tuple, in_ch: int, width: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for v in spec:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
        else:
            out_ch = _scaled(v, width)
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = out_ch
    return nn.Sequential(*layers), in_ch


def bilinear_kernel(size: int) -> torch.Tensor:
    """The (size x size) bilinear interpolation kernel used to initialise FCN-style deconvolutions."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    r = torch.arange(size, dtype=torch.float64)
    w1 = 1.0 - (r - centre).abs() / factor
    return (w1[:, None] * w1[None, :]).float()


def _bilinear_init_(deconv: nn.ConvTranspose2d) -> None:
    c_in, c_out, kh, kw = deconv.weight.shape
    assert c_in == c_out and kh == kw, "bilinear init needs square kernels and equal channel counts"
    with torch.no_grad():
        deconv.weight.zero_()
        k = bilinear_kernel(kh)
        idx = torch.arange(c_in)
        deconv.weight[idx, idx] = k


def centre_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the last two dims to (height, width); the extra pixels are split floor-left/ceil-right."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class OSVOSNet(nn.Module):
    def __init__(self, width: float = 1.0):
        super().__init__()
        self.width = float(width)
        self.stages = nn.ModuleList()
        self.side_prep = nn.ModuleList()
        self.score_dsn = nn.ModuleList()
        self.upscale = nn.ModuleList()
        self.upscale_ = nn.ModuleList()
        in_ch = 3
        for i, spec in enumerate(VGG16_STAGES):
            stage, in_ch = _make_stage(spec, in_ch, width)
            self.stages.append(stage)
            if i > 0:
                k, s = 2 ** (i + 1), 2**i  # stage i (1..4) has stride 2^i
                self.side_prep.append(nn.Conv2d(in_ch, SIDE_CHANNELS, kernel_size=3, padding=1))
                self.score_dsn.append(nn.Conv2d(SIDE_CHANNELS, 1, kernel_size=1))
                self.upscale.append(nn.ConvTranspose2d(SIDE_CHANNELS, SIDE_CHANNELS, k, stride=s, bias=False))
                self.upscale_.append(nn.ConvTranspose2d(1, 1, k, stride=s, bias=False))
        self.fuse = nn.Conv2d(SIDE_CHANNELS * (len(VGG16_STAGES) - 1), 1, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random init for training from scratch (tiny parent). OUR CHOICE: He-normal trunk/side convs with
        zero biases (the official parent starts from ImageNet VGG weights); deconvolutions bilinear, as the
        official ``interp_surgery``."""
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                _bilinear_init_(m)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        x = self.stages[0](x)
        side_feats, side_out = [], []
        for i in range(1, len(self.stages)):
            x = self.stages[i](x)
            prep = self.side_prep[i - 1](x)
            side_feats.append(centre_crop(self.upscale[i - 1](prep), h, w))
            side_out.append(centre_crop(self.upscale_[i - 1](self.score_dsn[i - 1](prep)), h, w))
        side_out.append(self.fuse(torch.cat(side_feats, dim=1)))
        return side_out


def infer_width(state: dict[str, torch.Tensor]) -> float:
    """The channel multiplier of an OSVOS state dict (first conv has 64*width filters)."""
    return state["stages.0.0.weight"].shape[0] / 64.0


def load_parent(path: str | Path, width: float | None = None) -> OSVOSNet:
    """Load a parent network (official ``parent_epoch-239.pth`` or our tiny parent) with strict key matching.

    ``width`` defaults to the one implied by the file; a mismatch with a given ``width`` is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError("OSVOS parent model", path, hint="Train one with 'osvos_cli parent' or fetch the official file.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable / not a tensor-only file
        raise DataError(path, f"not a loadable state dict ({exc})") from exc
    if isinstance(state, dict) and "net" in state and isinstance(state["net"], dict):
        state = state["net"]
    if not isinstance(state, dict) or "stages.0.0.weight" not in state:
        raise DataError(path, "not an OSVOS state dict (no key 'stages.0.0.weight')")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    first = state["stages.0.0.weight"].shape[0]
    if width is not None and _scaled(64, width) != first:
        raise DataError(path, f"parent has {first} first-layer filters but width {width:g} needs {_scaled(64, width)}")
    net = OSVOSNet(width if width is not None else infer_width(state))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"state dict does not match the OSVOS layout: {exc}") from exc
    return net
