"""Inception-v3 feature blocks for SIFID (SinGAN / SIV-GAN / OSMIS convention).

SIFID uses torchvision's ImageNet Inception-v3 (``inception_v3_google-0cc3c7bd.pth``), not
pytorch-fid's TF-ported network (reference notes metrics.md §2.2). Only the trunk's submodules
are called, so torchvision's ``transform_input`` is not applied and images are not resized to
299; every spatial position of a block's output is one feature sample.

Blocks (output widths 64 / 192 / 768 / 2048 = SIFID-1..4, thesis l.1472, l.1904):

====  =====================================================  ==================
idx   modules                                                size at 256x256
====  =====================================================  ==================
0     Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3 (no pool)  64 x 125 x 125
1     maxpool1, Conv2d_3b_1x1, Conv2d_4a_3x3                 192 x 60 x 60
2     maxpool2, Mixed_5b .. Mixed_6e                         768 x 14 x 14
3     Mixed_7a, Mixed_7b, Mixed_7c (no avg-pool)             2048 x 6 x 6
====  =====================================================  ==================

Block 0 stops *before* the first max-pool as in the official code (thesis l.1472 says "before
the first pooling layer"; thesis l.1904's "after" is resolved by the code, reference notes
metrics.md §1).

The module keeps torchvision's parameter names (including the unused ``AuxLogits`` and ``fc``)
so that the official ImageNet state dict, and any ``torchvision.models.inception_v3()`` state
dict, loads with ``strict=True``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# Module names of each block, in order (torchvision's attribute names).
BLOCKS: tuple[tuple[str, ...], ...] = (
    ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"),
    ("maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3"),
    ("maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
    ("Mixed_7a", "Mixed_7b", "Mixed_7c"),
)
BLOCK_DIMS: tuple[int, ...] = (64, 192, 768, 2048)
_UNUSED = ("AuxLogits", "avgpool", "dropout", "fc")  # kept for state-dict compatibility only


class SIFIDInception(nn.Module):
    """torchvision Inception-v3 trunk split into the four SIFID blocks.

    ``forward(x)`` takes float images in [-1, 1] of shape (B, 3, H, W) (the official code maps
    uint8 ``x`` to ``2 * x / 255 - 1``) and returns the list of the four block outputs.
    Always evaluated in float32 (no autocast: the covariances need the precision).
    """

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        # aux_logits=True: the official file and inception_v3() state dicts carry AuxLogits.*.
        tv = inception_v3(weights=None, aux_logits=True, init_weights=False)
        for name in (*[m for block in BLOCKS for m in block], *_UNUSED):
            setattr(self, name, getattr(tv, name))
        self.weights_label = "uninitialised"
        self.eval()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_weights(cls, path: str | Path | None, seed: int = 0) -> "SIFIDInception":
        """Load the ImageNet state dict at ``path`` (strict), or seeded random init if ``None``.

        Checksums are the caller's job; this never downloads. A random network is labelled
        ``weights_label = "random-init(seed=S)"``; results computed with it are NOT SIFID
        numbers comparable to the thesis (tiny preset only).
        """
        net = cls()
        if path is None:
            net.reset_parameters(seed)
            net.weights_label = f"random-init(seed={seed})"
        else:
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
            net.weights_label = "imagenet"
        net.requires_grad_(False)
        return net.eval()

    @torch.no_grad()
    def reset_parameters(self, seed: int = 0) -> None:
        """Deterministic random init independent of the global RNG.

        Convolutions/linear layers: Kaiming-normal (fan-in, ReLU gain) so activations keep their
        scale through the 90-odd layers (torchvision's own init, trunc-normal std 0.1, explodes
        and PyTorch's default init vanishes); BatchNorm: identity (weight 1, bias 0, running
        mean 0, running var 1).
        """
        gen = torch.Generator().manual_seed(int(seed))
        for name, mod in self.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.weight.fill_(1.0)
                mod.bias.zero_()

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, upto: int = 3) -> list[torch.Tensor]:
        """Block outputs 0..``upto`` (inclusive) for images ``x`` in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if not 0 <= upto < len(BLOCKS):
            raise ValueError(f"upto must be in 0..{len(BLOCKS) - 1}, got {upto}")
        out = []
        for block in BLOCKS[: upto + 1]:
            for name in block:
                x = getattr(self, name)(x)
            out.append(x)
        return out


def block_output_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes (h, w) of the four blocks for an H x W input; 0 where a block is empty."""

    def conv(s: int, k: int, stride: int) -> int:  # no padding in the size-changing layers
        return max((s - k) // stride + 1, 0) if s >= k else 0

    sizes = []
    h, w = height, width
    h, w = conv(conv(h, 3, 2), 3, 1), conv(conv(w, 3, 2), 3, 1)  # 1a (stride 2), 2a; 2b is padded
    sizes.append((h, w))
    h, w = conv(conv(h, 3, 2), 3, 1), conv(conv(w, 3, 2), 3, 1)  # maxpool1, 3b (1x1), 4a
    sizes.append((h, w))
    h, w = conv(conv(h, 3, 2), 3, 2), conv(conv(w, 3, 2), 3, 2)  # maxpool2, Mixed_6a (stride 2)
    sizes.append((h, w))
    h, w = conv(h, 3, 2), conv(w, 3, 2)  # Mixed_7a (stride 2)
    sizes.append((h, w))
    return sizes


__all__ = ["SIFIDInception", "BLOCKS", "BLOCK_DIMS", "block_output_sizes"]
