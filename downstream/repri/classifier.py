"""The RePRI transductive classifier (Boudiaf et al. 2021), batched over tasks; written anew from the
description in reference notes downstream-protocols §3.2 (official ``src/classifier.py`` for the facts).

For T tasks with S support shots each (features already extracted, C x h x w):

* logits = temperature (20) x cosine(feature, prototype); p(fg) = sigmoid(logit - bias);
* prototype initialised as the masked mean of the support features over all shots (support masks
  downsampled to h x w, nearest); bias initialised as the mean query logit;
* pi (foreground/background proportion of the query) estimated from the initial soft predictions;
* ``adapt_iter - 1`` = 49 SGD steps (lr 0.025) on (prototype, bias) of
  ``ce_weight * CE(support) + kl_weight * KL(marginal || pi) + ent_weight * H(query)``, with the weights
  'auto' = 1 / n_shots of the task; after the step of iteration i with i + 1 in ``fb_param_update`` (10),
  pi is re-estimated and the KL weight grows by 1.

Padding shots (tasks with fewer shots than the batch maximum) have label 255 and are ignored. The query
label is used only through its valid-pixel mask (image padding), as in the official code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import RePRIConfig

EPS = 1e-10
IGNORE = 255


@dataclass
class RePRIState:
    prototype: torch.Tensor   # (T, C)
    bias: torch.Tensor        # (T,)
    temperature: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(T, S, C, h, w) -> temperature x cosine similarity (T, S, h, w)."""
        proto = self.prototype[:, None, :, None, None]
        dot = (features * proto).sum(2)
        norm = features.norm(dim=2) * self.prototype.norm(dim=1)[:, None, None, None]
        return self.temperature * dot / (norm + EPS)

    def fg_proba(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits - self.bias[:, None, None, None])

    def predict(self, features_q: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Binary query masks (T, H, W) (1 = foreground): logits upsampled bilinearly (align_corners=True) to
        ``size``, foreground where p(fg) > p(bg) (argmax, ties -> background)."""
        with torch.no_grad():
            logits = self.logits(features_q)[:, 0]
            if size is not None:
                logits = F.interpolate(logits[:, None], size, mode="bilinear", align_corners=True)[:, 0]
            return (logits - self.bias[:, None, None] > 0).long()


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, S, H, W) label maps -> (T, S, h, w), nearest."""
    return F.interpolate(labels.float(), size, mode="nearest").long()


def _two_class(p_fg: torch.Tensor) -> torch.Tensor:
    """(T, S, h, w) -> (T, S, 2, h, w) probabilities (background, foreground)."""
    return torch.stack([1 - p_fg, p_fg], 2)


def _marginal(probas: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean class probability over valid query pixels, (T, 2)."""
    return (valid[:, :, None] * probas).sum((1, 3, 4)) / valid.sum((1, 2, 3))[:, None]


def task_weights(value: float | None, n_shots: torch.Tensor) -> torch.Tensor:
    """'auto' (None) -> 1 / n_shots per task, else the constant."""
    return 1.0 / n_shots.float() if value is None else torch.full_like(n_shots.float(), float(value))


def repri_adapt(features_s: torch.Tensor, labels_s: torch.Tensor, features_q: torch.Tensor,
                valid_q: torch.Tensor, n_shots: torch.Tensor, cfg: RePRIConfig = RePRIConfig()) -> RePRIState:
    """Run RePRI on T tasks.

    features_s (T, S, C, h, w), labels_s (T, S, H, W) with 0/1/255 (image or feature resolution), features_q
    (T, 1, C, h, w), valid_q (T, 1, H, W) bool (False on padding), n_shots (T,) real+synthetic shots per task.
    Features are used as given (normalise them first when ``cfg.norm_feat``). Returns the adapted state.
    """
    size = features_s.shape[-2:]
    gt_s = downsample_labels(labels_s, size)
    valid_s = (gt_s != IGNORE).float()
    vq = downsample_labels(valid_q.long(), size).float()
    if bool((vq.sum((1, 2, 3)) == 0).any()):
        raise ValueError("a query has no valid pixel at the feature resolution")
    onehot_s = torch.stack([(gt_s == 0).float(), (gt_s == 1).float()], 2)

    fg = (gt_s == 1).float()[:, :, None]
    proto = (features_s * fg).sum((1, 3, 4)) / (fg.sum((1, 3, 4)) + EPS)
    state = RePRIState(proto, torch.zeros(len(proto), device=proto.device), cfg.temperature)
    with torch.no_grad():
        state.bias = state.logits(features_q).mean((1, 2, 3))
        pi = _marginal(_two_class(state.fg_proba(state.logits(features_q))), vq)

    l_ce = task_weights(cfg.ce_weight, n_shots).to(proto.device)
    l_kl = task_weights(cfg.kl_weight, n_shots).to(proto.device)
    l_ent = task_weights(cfg.ent_weight, n_shots).to(proto.device)

    state.prototype = state.prototype.detach().clone().requires_grad_(True)
    state.bias = state.bias.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([state.prototype, state.bias], lr=cfg.cls_lr)
    n_valid_q = vq.sum((1, 2, 3))
    for it in range(1, cfg.adapt_iter):
        with torch.enable_grad():
            pq = _two_class(state.fg_proba(state.logits(features_q)))
            ps = _two_class(state.fg_proba(state.logits(features_s)))
            ent = -(vq[:, :, None] * pq * torch.log(pq + EPS)).sum((1, 2, 3, 4)) / n_valid_q
            marg = _marginal(pq, vq)
            kl = (marg * torch.log(marg / (pi + EPS))).sum(1)
            ce = -(valid_s[:, :, None] * onehot_s * torch.log(ps + EPS)).sum((1, 2, 3, 4)) / valid_s.sum((1, 2, 3))
            loss = (l_ce * ce + l_kl * kl + l_ent * ent).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (it + 1) in cfg.fb_param_update and bool((l_kl != 0).any()):
            with torch.no_grad():
                pi = _marginal(_two_class(state.fg_proba(state.logits(features_q))), vq)
            l_kl = l_kl + 1
    state.prototype = state.prototype.detach()
    state.bias = state.bias.detach()
    return state
