"""SPADE+ generator: the SPADE generator without the image encoder (thesis l.1151; reference notes §3).

Layout (reference notes §3): ``fc`` = 3x3 conv on the nearest-downsampled label map (no VAE: the input is the
label map, not z) at (h, w) = crop / 2^num_up -> 7 SPADE residual blocks head_0 (16nf->16nf), G_middle_0,
G_middle_1 (16->16), up_0 (16->8), up_1 (8->4), up_2 (4->2), up_3 (2->1) with nearest x2 upsampling before
G_middle_0, (only for 'more': before G_middle_1,) and before every up_i -> LReLU(0.2) -> ``conv_img`` (3x3,
no SN) -> tanh. The SPADE residual blocks and SPADE layers are the ones of the OASIS generator
(``nets/spade_blocks.py``): the OASIS generator is this design minus the first block (thesis l.1095: 96M ->
72M parameters; reference notes: 96.49M vs 72.55M for ADE20K).

With ``cfg.noise_3d`` (the "SPADE+ 3D noise" row of Table 4.2) the label map is concatenated with the OASIS 3D
noise exactly as in the OASIS generator (``oasis.noise_label_conditioning``), so ``forward`` takes the same
arguments as ``OASISGenerator.forward``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE
from .oasis import init_oasis_weights, noise_label_conditioning
from .spade_blocks import SPADENormSpec, SPADEResBlock
from .spade_config import SPADEConfig

BLOCK_NAMES = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")
_WIDTHS = (16, 16, 16, 16, 8, 4, 2, 1)  # x ngf: input of head_0, then the output of every block


class SPADEGenerator(nn.Module):
    """SPADE+ G. Keys: fc.*, head_0.*, G_middle_{0,1}.*, up_{0..3}.*, conv_img.*."""

    def __init__(self, cfg: SPADEConfig):
        super().__init__()
        self.cfg = cfg
        ch = [w * cfg.ngf for w in _WIDTHS]
        spec = SPADENormSpec(label_nc=cfg.label_input_nc, hidden=cfg.spade_hidden, kernel=cfg.spade_ks,
                             param_free_norm=cfg.param_free_norm)
        self.fc = nn.Conv2d(cfg.label_input_nc, ch[0], 3, padding=1)
        for i, name in enumerate(BLOCK_NAMES):
            self.add_module(name, SPADEResBlock(ch[i], ch[i + 1], spec))
        self.conv_img = nn.Conv2d(ch[-1], 3, 3, padding=1)
        # SPADE init: xavier_normal with gain 0.02 (reference notes §3 "Init"), the same as OASIS (§1.5)
        init_oasis_weights(self)

    def _upsample_before(self, name: str) -> bool:
        if name == "head_0":
            return False
        if name == "G_middle_1":
            return self.cfg.num_upsampling_layers == "more"
        return True

    def forward(self, label: torch.Tensor, z: torch.Tensor | None = None, noise_mode: str = "image",
                region_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                return_noise: bool = False):
        """Images in [-1, 1] at ``cfg.output_size`` from a one-hot label map (B, semantic_nc, H, W). The noise
        arguments are used only with ``cfg.noise_3d`` (as in ``OASISGenerator.forward``)."""
        seg, z_map = noise_label_conditioning(label, self.cfg.semantic_nc,
                                              self.cfg.z_dim if self.cfg.noise_3d else None,
                                              z, noise_mode, region_mask, generator)
        x = self.fc(F.interpolate(seg, size=self.cfg.init_size, mode="nearest"))
        for name in BLOCK_NAMES:
            if self._upsample_before(name):
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = getattr(self, name)(x, seg)
        img = torch.tanh(self.conv_img(F.leaky_relu(x, LRELU_SLOPE)))
        return (img, z_map) if return_noise else img
