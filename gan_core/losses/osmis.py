"""Losses of SIV-GAN / OSMIS.

* Adversarial BCE per discriminator block, aggregated per branch (thesis Eq. 5.1) and
  weighted 2:1:1 (low-level : content : layout, Eq. 5.2 / 6.1).
* OSMIS object loss: (N+1)-class cross-entropy on MCA vectors with class balancing
  (Eq. 6.5 / 6.6).
* Diversity regularisation (Eq. 5.3) in feature or image space; returned as the mean
  distance, which the generator *maximises* (its loss adds ``-lambda * distance``).
* The alternatives of thesis Table 5.4 (l.1564): latent consistency regularisation (zCR,
  Zhao et al. 2021) on the generator only, and the diversity-sensitive loss (DS, Yang et al.
  2019), both in image space; same sign convention (distances to be maximised).
* D_m loss of the SemanticGAN-style mask supervision baseline (thesis l.1798).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets.osmis import DiscriminatorOutput
from ..nets.osmis_config import OSMISConfig


def bce_block_loss(logits: torch.Tensor, target_real: bool) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over the output map (reference notes §2.5)."""
    logits = logits.float()
    target = torch.ones_like(logits) if target_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def class_balance_weights(masks: torch.Tensor) -> torch.Tensor:
    """alpha_i of thesis Eq. 6.6: inverse pixel frequency of each mask channel, normalised to sum
    to 1 over channels. ``masks`` (B, K, H, W); counts over batch and pixels; absent classes get 0."""
    inv = 1.0 / masks.detach().float().sum(dim=(0, 2, 3))
    inv = torch.where(torch.isinf(inv), torch.zeros_like(inv), inv)
    return inv / inv.sum().clamp_min(torch.finfo(inv.dtype).tiny)


def object_loss(logits: torch.Tensor, masks: torch.Tensor, target_real: bool) -> torch.Tensor:
    """OSMIS D_object loss for one content block (thesis Eq. 6.5).

    ``logits``: (K*B, K+1, 1, 1), rows channel-major (see ``masked_content_attention``).
    Real target: row k*B+b -> class k, weighted by alpha_k (Eq. 6.6), i.e.
    (1/B) sum_b sum_k alpha_k * CE. Fake target: every row -> the extra "fake" class K, mean over
    rows. (Eq. 6.5 prints the fake term as log(1 - D^fake); the text says fakes "should be
    categorized as an additional fake class", which is what the official code does: CE to class K.)
    """
    k = masks.shape[1]
    b = masks.shape[0]
    logits = logits.float().flatten(1)
    logp = F.log_softmax(logits, dim=1)
    if not target_real:
        return -logp[:, k].mean()
    alpha = class_balance_weights(masks)                          # (K,)
    target_logp = logp[:, :k].reshape(k, b, k).diagonal(dim1=0, dim2=2)  # (B, K): row k*B+b, class k
    return -(target_logp * alpha[None]).sum(dim=1).mean()


def _branch(losses: list[torch.Tensor], weight: float, n_total: int, normalisation: str) -> torch.Tensor | None:
    if not losses:
        return None
    s = torch.stack(losses)
    if normalisation == "thesis":   # Eq. 5.1: mean over the blocks of the branch
        return weight * s.mean()
    return weight * 0.5 * s.sum() / n_total  # official: 1.0/N_D, 0.5/N_D, 0.5/N_D for weights 2, 1, 1


def adversarial_losses(out: DiscriminatorOutput, target_real: bool, cfg: OSMISConfig,
                       masks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Weighted branch losses {'low_level', 'content', 'layout'} (Eq. 5.2 / 6.1) for one D output.

    With MCA (``out.n_classes > 0``) the content branch uses :func:`object_loss` on ``masks``.
    """
    n_total = out.n_blocks or len(out.low_level) + max(len(out.content), len(out.layout))
    res: dict[str, torch.Tensor] = {}
    if cfg.low_level_loss:
        res["low_level"] = _branch([bce_block_loss(o, target_real) for o in out.low_level],
                                   cfg.weight_low_level, n_total, cfg.loss_normalisation)
    if out.content:
        if out.n_classes > 0:
            parts = [object_loss(o, masks, target_real) for o in out.content]
        else:
            parts = [bce_block_loss(o, target_real) for o in out.content]
        res["content"] = _branch(parts, cfg.weight_content, n_total, cfg.loss_normalisation)
    if out.layout:
        res["layout"] = _branch([bce_block_loss(o, target_real) for o in out.layout],
                                cfg.weight_layout, n_total, cfg.loss_normalisation)
    if out.mask_d:  # D_m (thesis l.1798): mean BCE over its blocks (Eq. 5.1 style) x weight_d_m
        res["mask_d"] = cfg.weight_d_m * torch.stack([bce_block_loss(o, target_real) for o in out.mask_d]).mean()
    return res


def diversity_distance(layers: list[torch.Tensor], normalisation: str = "thesis") -> torch.Tensor:
    """The diversity term of thesis Eq. 5.3 for a batch (to be maximised).

    For every layer l and pair k < m of the batch: d_l(k, m) = mean |f_l[k] - f_l[m]| (L1 per
    element, as the official L1Loss). "thesis": mean over pairs and layers (Eq. 5.3's expectation
    and 1/L); "official": the sum over pairs and layers times 2/(L(L-1)), L = number of layers
    (reference notes §2.5 quirk).
    """
    b = layers[0].shape[0]
    if b < 2:
        return layers[0].new_zeros((), dtype=torch.float32)
    i, j = torch.triu_indices(b, b, offset=1, device=layers[0].device)
    per_layer = torch.stack([(f[i].float() - f[j].float()).abs().flatten(1).mean(dim=1) for f in layers])  # (L, P)
    if normalisation == "thesis":
        return per_layer.mean()
    n = len(layers)
    return per_layer.sum() * (2.0 / (n * (n - 1)) if n > 1 else 1.0)


def _pairs(b: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.triu_indices(b, b, offset=1, device=device))


def zcr_distance(image: torch.Tensor, image_perturbed: torch.Tensor) -> torch.Tensor:
    """Generator term of latent consistency regularisation (zCR, Zhao et al. 2021, "Improved
    consistency regularization for GANs"), to be maximised:

        L_zCR(G) = E_z || G(z) - G(z + dz) ||^2,   dz ~ N(0, sigma^2 I),

    so the generator loss adds ``-lambda * L_zCR`` (Zhao et al.: L_G - lambda_gen ||G(z) - G(T(z))||^2).
    The discriminator term of zCR is not used (thesis l.1564: "We apply zCR only to the generator
    loss"). We take the mean over elements instead of the sum, to be resolution-independent.
    """
    return (image.float() - image_perturbed.float()).pow(2).mean()


def ds_distance(image: torch.Tensor, z: torch.Tensor, tau: float | None = None) -> torch.Tensor:
    """Diversity-sensitive term (DS, Yang et al. 2019, "Diversity-sensitive conditional GANs",
    Eq. 2), to be maximised, in image space:

        L_DS(G) = E_{z1, z2} [ min( ||G(z1) - G(z2)|| / ||z1 - z2||, tau ) ]

    with L1 distances (mean absolute differences) over all batch pairs. Unlike DR (Eq. 5.3),
    the image distance is normalised by the latent distance (thesis l.1446-1452). ``tau=None``
    leaves it unbounded (the tanh images bound the numerator).
    """
    b = image.shape[0]
    if b < 2:
        return image.new_zeros((), dtype=torch.float32)
    i, j = _pairs(b, image.device)
    num = (image[i].float() - image[j].float()).abs().flatten(1).mean(dim=1)
    den = (z[i].float() - z[j].float()).abs().flatten(1).mean(dim=1)
    ratio = num / den.clamp_min(1e-8)
    if tau is not None:
        ratio = ratio.clamp(max=tau)
    return ratio.mean()
