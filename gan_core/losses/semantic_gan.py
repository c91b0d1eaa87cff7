"""Objectives of the semantic-synthesis switch set (``nets/semantic_gan_factory.SemanticGANConfig``): the
adversarial loss of each D label encoding, feature matching, VGG and the mixing consistency term, combined
as a trainer needs them.

* concat / projection encodings: hinge loss (SPADE, ``losses/spade.py``), averaged over the D scales;
* n_plus_1 / n_plus_1_balanced: the OASIS (N+1)-class CE (``losses/oasis.py``), unbalanced / class-balanced,
  against the label map nearest-resized to each output map (the U-Net's output is at the input resolution;
  PatchGAN outputs are coarser: our choice, the thesis does not describe N+1 PatchGANs), averaged over scales;
* feature matching (appendix Table 12): SPADE's L1 over D's intermediate features (``losses/spade.py``);
* VGG (Tables 4.8-4.10, 12): SPADE's VGG19 loss;
* KLD (the "SPADE+, Encoder" row of Table 4.2, ``spade.encoder``): SPADE's KLD of the encoder posterior, weighted
  by ``spade.lambda_kld``, logged as ``G_kld``;
* mixing consistency (Table 4.11): thesis Eq. 4.4 with the LabelMix or CutMix mask, on every scale's logits
  with the mask nearest-resized to that scale (our choice for multi-scale / patch outputs), averaged.

Update order and detaching follow the OASIS trainer (reference notes §1.4): the G step uses D(G(t)) (and,
with feature matching, D(x) whose features are detached inside the loss); the D step uses a no-grad fake.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nets.patchgan import DOutput
from ..nets.semantic_gan_factory import SemanticGANConfig
from .oasis import label_indices, labelmix_consistency, n_plus_one_loss
from .spade import VGGLoss, feature_matching_loss, hinge_d_fake, hinge_d_real, hinge_g_loss, kld_loss


def _label_at(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) class indices of the one-hot / index label map, nearest-resized to ``size``."""
    idx = label_indices(label)
    if tuple(idx.shape[-2:]) == tuple(size):
        return idx
    return F.interpolate(idx[:, None].float(), size=size, mode="nearest")[:, 0].long()


def _mask_at(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return mask if tuple(mask.shape[-2:]) == tuple(size) else F.interpolate(mask, size=size, mode="nearest")


def _n_plus_one(cfg: SemanticGANConfig, out: DOutput, label: torch.Tensor, for_real: bool) -> torch.Tensor:
    terms = [n_plus_one_loss(t, _label_at(label, t.shape[-2:]), for_real, cfg.oasis.contain_dontcare_label,
                             cfg.class_balancing) for t in out.logits]
    return sum(terms) / len(terms)


def d_adversarial_losses(cfg: SemanticGANConfig, d_real: DOutput, d_fake: DOutput,
                         label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term) of the D loss for the configured label encoding."""
    if cfg.adversarial_loss == "hinge":
        return hinge_d_real(d_real.logits), hinge_d_fake(d_fake.logits)
    return _n_plus_one(cfg, d_real, label, True), _n_plus_one(cfg, d_fake, label, False)


def g_adversarial_loss(cfg: SemanticGANConfig, d_fake: DOutput, label: torch.Tensor) -> torch.Tensor:
    """Adversarial G loss: hinge -mean(D(G(t))), or thesis Eq. 4.5 (real-class N+1 CE)."""
    if cfg.adversarial_loss == "hinge":
        return hinge_g_loss(d_fake.logits)
    return _n_plus_one(cfg, d_fake, label, True)


def mixing_consistency(d_mixed: DOutput, d_real: DOutput, d_fake: DOutput, mask: torch.Tensor) -> torch.Tensor:
    """Thesis Eq. 4.4 (mean-reduced) on every scale, averaged: || D(mix(x, x^)) - mix(D(x), D(x^)) ||^2."""
    terms = [labelmix_consistency(m, r, f, _mask_at(mask, m.shape[-2:]))
             for m, r, f in zip(d_mixed.logits, d_real.logits, d_fake.logits)]
    return sum(terms) / len(terms)


@dataclass
class SemanticGANLoss:
    """All loss terms of one configuration. ``vgg`` must be given when ``cfg.vgg_loss`` (build it with
    ``losses.spade.VGGLoss(VGG19Features(weights_path, cfg.vgg_input_norm))``)."""

    cfg: SemanticGANConfig
    vgg: VGGLoss | None = None

    def __post_init__(self) -> None:
        if self.cfg.vgg_loss and self.vgg is None:
            raise ValueError("SemanticGANLoss: cfg.vgg_loss is on but no VGGLoss was given")

    @property
    def needs_real_in_g_step(self) -> bool:
        """Feature matching compares D's features of G(t) with those of the real image in the G step."""
        return self.cfg.feature_matching

    def generator(self, d_fake: DOutput, label: torch.Tensor, fake: torch.Tensor | None = None,
                  real: torch.Tensor | None = None, d_real: DOutput | None = None,
                  mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """G terms (already weighted by their lambdas) and their sum under "G_total"; with the SPADE+ encoder
        (``cfg.uses_encoder``) ``mu`` / ``logvar`` of the real images' posterior give the KLD term."""
        terms = {"G_adv": g_adversarial_loss(self.cfg, d_fake, label)}
        if self.cfg.feature_matching:
            if d_real is None:
                raise ValueError("feature matching needs d_real in the G step")
            terms["G_fm"] = self.cfg.lambda_fm * feature_matching_loss(d_fake.features, d_real.features)
        if self.cfg.vgg_loss:
            if fake is None or real is None:
                raise ValueError("the VGG loss needs the fake and the real images")
            terms["G_vgg"] = self.cfg.lambda_vgg * self.vgg(fake, real)
        if self.cfg.uses_encoder:
            if mu is None or logvar is None:
                raise ValueError("the SPADE+ encoder needs mu and logvar of the real images for the KLD term")
            terms["G_kld"] = self.cfg.spade.lambda_kld * kld_loss(mu, logvar)
        terms["G_total"] = sum(terms.values())
        return terms

    def discriminator(self, d_real: DOutput, d_fake: DOutput, label: torch.Tensor,
                      d_mixed: DOutput | None = None, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D terms (weighted) and their sum under "D_total"; the mixing term needs ``d_mixed`` and ``mask``
        when ``cfg.mixing != "none"`` and ``cfg.lambda_mixing > 0``."""
        l_real, l_fake = d_adversarial_losses(self.cfg, d_real, d_fake, label)
        terms = {"D_real": l_real, "D_fake": l_fake}
        if self.cfg.mixing != "none" and self.cfg.lambda_mixing > 0:
            if d_mixed is None or mask is None:
                raise ValueError(f"mixing={self.cfg.mixing!r} needs d_mixed and mask")
            terms["D_mixing"] = self.cfg.lambda_mixing * mixing_consistency(d_mixed, d_real, d_fake, mask)
        terms["D_total"] = sum(terms.values())
        return terms
