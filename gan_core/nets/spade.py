"""SPADE+ generator: the SPADE generator without the image encoder (thesis l.1151; reference notes §3), or
with it for the "SPADE+, Encoder" row of Table 4.2 (``cfg.encoder``, see below).

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

With ``cfg.encoder`` (the "SPADE+, Encoder" row of Table 4.2; SPADE ``--use_vae``) the generator carries SPADE's
image encoder (``nets/spade_encoder.py``, submodule ``encoder``) and ``fc`` is SPADE's
``Linear(z_dim -> 16nf * sh * sw)`` reshaped to (16nf, sh, sw) (NVlabs/SPADE models/networks/generator.py,
``use_vae`` branch); the SPADE layers see the label map only. z is
* ``image`` given (training): the encoder's posterior of that (real) image, z = mu + eps * std
  (models/pix2pix_model.py ``generate_fake`` / ``encode_z``), eps from ``generator``;
* otherwise (test time, the multi-modal samples of Table 4.2): z ~ N(0, I) from ``generator``
  (generator.py: "we sample z from unit normal" when z is None), or a given (B, z_dim) ``z``.
``return_posterior=True`` also returns (mu, logvar) for the KLD term (None without an image). The encoder is
a submodule so that G's optimiser trains it (pix2pix_model.py ``create_optimizers``: G_params += netE
params), and checkpoints / EMA carry it with G (state-dict keys ``encoder.*``; SPADE saves it as its own
``net_E`` file).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import LRELU_SLOPE
from .oasis import init_oasis_weights, noise_label_conditioning
from .spade_blocks import SPADENormSpec, SPADEResBlock
from .spade_config import SPADEConfig
from .spade_encoder import ConvImageEncoder, reparameterize, standard_normal

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
        if cfg.encoder:  # generator.py (use_vae): fc = Linear(z_dim, 16nf * sw * sh)
            self.fc = nn.Linear(cfg.encoder_z_dim, ch[0] * cfg.init_size[0] * cfg.init_size[1])
        else:
            self.fc = nn.Conv2d(cfg.label_input_nc, ch[0], 3, padding=1)
        for i, name in enumerate(BLOCK_NAMES):
            self.add_module(name, SPADEResBlock(ch[i], ch[i + 1], spec))
        self.conv_img = nn.Conv2d(ch[-1], 3, 3, padding=1)
        if cfg.encoder:  # encoder.py ConvEncoder: ndf = opt.ngf
            self.encoder = ConvImageEncoder(cfg.ngf, cfg.encoder_z_dim, cfg.encoder_size)
        # SPADE init: xavier_normal with gain 0.02 (reference notes §3 "Init"), the same as OASIS (§1.5)
        init_oasis_weights(self)

    def _upsample_before(self, name: str) -> bool:
        if name == "head_0":
            return False
        if name == "G_middle_1":
            return self.cfg.num_upsampling_layers == "more"
        return True

    def _encoder_latent(self, label: torch.Tensor, z: torch.Tensor | None, noise_mode: str,
                        region_mask: torch.Tensor | None, generator: torch.Generator | None,
                        image: torch.Tensor | None):
        """(z, mu, logvar) of the encoder variant (see module doc); mu / logvar None without an image."""
        if noise_mode != "image" or region_mask is not None:
            raise ValueError("the SPADE+ encoder's z is one vector per image: noise_mode must be 'image' and "
                             "region_mask None")
        b = label.shape[0]
        if image is not None:
            if z is not None:
                raise ValueError("give either the image to encode or z, not both")
            if image.shape[0] != b:
                raise ValueError(f"image batch {image.shape[0]} != label batch {b}")
            mu, logvar = self.encoder(image)
            return reparameterize(mu, logvar, generator), mu, logvar
        if z is None:
            return standard_normal((b, self.cfg.encoder_z_dim), label, generator), None, None
        if tuple(z.shape) != (b, self.cfg.encoder_z_dim):
            raise ValueError(f"z must be (B, {self.cfg.encoder_z_dim}), got {tuple(z.shape)}")
        return z.to(label), None, None

    def forward(self, label: torch.Tensor, z: torch.Tensor | None = None, noise_mode: str = "image",
                region_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                return_noise: bool = False, image: torch.Tensor | None = None, return_posterior: bool = False):
        """Images in [-1, 1] at ``cfg.output_size`` from a one-hot label map (B, semantic_nc, H, W). The noise
        arguments are used only with ``cfg.noise_3d`` (as in ``OASISGenerator.forward``) or ``cfg.encoder``
        (z vector; ``image`` = real images to encode). Returns ``img``, or a tuple ``(img[, z][, mu, logvar])``
        with ``return_noise`` / ``return_posterior``."""
        mu = logvar = None
        if self.cfg.encoder:
            if label.dim() != 4 or label.shape[1] != self.cfg.semantic_nc:
                raise ValueError(f"label must be one-hot (B, {self.cfg.semantic_nc}, H, W), got {tuple(label.shape)}")
            seg = label
            z_used, mu, logvar = self._encoder_latent(label, z, noise_mode, region_mask, generator, image)
            h, w = self.cfg.init_size
            x = self.fc(z_used).view(label.shape[0], -1, h, w)  # generator.py: view(-1, 16nf, sh, sw)
        else:
            if image is not None:
                raise ValueError("this SPADE+ generator has no image encoder (SPADEConfig.encoder is off)")
            seg, z_used = noise_label_conditioning(label, self.cfg.semantic_nc,
                                                   self.cfg.z_dim if self.cfg.noise_3d else None,
                                                   z, noise_mode, region_mask, generator)
            x = self.fc(F.interpolate(seg, size=self.cfg.init_size, mode="nearest"))
        for name in BLOCK_NAMES:
            if self._upsample_before(name):
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = getattr(self, name)(x, seg)
        img = torch.tanh(self.conv_img(F.leaky_relu(x, LRELU_SLOPE)))
        if not (return_noise or return_posterior):
            return img
        out = (img,) + ((z_used,) if return_noise else ()) + ((mu, logvar) if return_posterior else ())
        return out
