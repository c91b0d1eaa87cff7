"""Class-balanced sigmoid cross-entropy of OSVOS (reference notes downstream-protocols.md §1.2).

Official behaviour (``class_balanced_cross_entropy_loss(..., size_average=False, batch_average=True)``):
labels are binarised with ``label >= 0.5``; the per-pixel binary cross-entropy of the logits is summed
separately over positive and negative pixels; the positive sum is weighted by the fraction of negative
pixels and vice versa (fractions over the whole batch); the result is summed over pixels and divided by the
batch size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def class_balanced_bce(logits: torch.Tensor, labels: torch.Tensor, size_average: bool = False,
                       batch_average: bool = True) -> torch.Tensor:
    """Class-balanced BCE of ``logits`` (B,1,H,W) against ``labels`` (same shape, values in [0, 1])."""
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    logits = logits.float()
    pos = (labels >= 0.5).to(logits.dtype)
    neg = 1.0 - pos
    n_pos, n_neg = pos.sum(), neg.sum()
    total = n_pos + n_neg
    bce = F.binary_cross_entropy_with_logits(logits, pos, reduction="none")  # numerically stable log(1+e^x)
    loss = (n_neg / total) * (pos * bce).sum() + (n_pos / total) * (neg * bce).sum()
    if size_average:
        return loss / labels.numel()
    if batch_average:
        return loss / labels.shape[0]
    return loss
