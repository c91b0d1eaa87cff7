"""OASIS objectives (thesis Sec. 4.2.2-4.2.3): the (N+1)-class cross-entropy with class balancing
(Eq. 4.2, 4.3), the generator loss (Eq. 4.5) and the LabelMix consistency regulariser (Eq. 4.4).

Conventions (reference notes §1.4, matching the released checkpoints): the discriminator's channel 0 is
the fake class and semantic class c is channel c + 1 (the thesis calls the fake class the "(N+1)-th").

Class balancing. Thesis Eq. 4.3 gives alpha_c = H*W / (per-image expected pixel count of c), i.e.
inverse pixel frequency in the batch, B*H*W / count_c ("eq4.3", the default: the thesis is implemented where
it and the official code disagree). With Eq. 4.2's pixel sums in both terms, the real term is then
sum_c mean_{p in c} CE against mean_p CE of the fake term. The official code additionally divides by the
number of classes present, ``n_present`` (reference notes §1.4): w_c = B*H*W / (n_present * count_c), so the
real term is the MEAN over present classes and stays on the scale of the fake term; the relative class
weights are identical. The released checkpoints were trained that way: ``class_balancing: official``
(OASISConfig) selects it. The dontcare label 0 (when the dataset has one) gets weight 0 and is not counted in
n_present; fake pixels are unweighted.

LabelMix. The consistency term is the MEAN squared error over all logits (official nn.MSELoss); thesis
Eq. 4.4 writes a squared L2 norm, whose sum-reduction would rescale lambda_LM by B*(N+1)*H*W — the thesis'
lambda_LM = 5/10 (l.1121) belong to the mean. D(real) and D(fake) are not detached (reference notes §1.4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BALANCING = ("official", "eq4.3", "none")


def label_indices(label: torch.Tensor) -> torch.Tensor:
    """(B, H, W) int64 class indices from a one-hot (B, N, H, W) map (argmax) or pass through indices."""
    if label.dim() == 4:
        return label.argmax(dim=1)
    if label.dim() == 3:
        return label.long()
    raise ValueError(f"label must be (B,N,H,W) one-hot or (B,H,W) indices, got {tuple(label.shape)}")


def n_plus_one_target(label: torch.Tensor, for_real: bool) -> torch.Tensor:
    """Per-pixel target of the (N+1)-class CE: real class c -> c + 1, fake -> 0 (reference notes §1.4)."""
    idx = label_indices(label)
    return idx + 1 if for_real else torch.zeros_like(idx)


def class_balance_weights(label: torch.Tensor, num_classes: int, contain_dontcare: bool = True,
                          mode: str = "eq4.3") -> torch.Tensor:
    """Per-pixel weights (B, H, W) for the real-class CE.

    "eq4.3": w_c = B*H*W / count_c (thesis Eq. 4.3); "official": w_c = B*H*W / (n_present * count_c);
    "none": ones. count_c is summed over the batch; with ``contain_dontcare`` class 0 gets weight 0 and is
    excluded from n_present (reference notes §1.4: weights 2.0 / 1.0 for the map [[0,1],[3,3]])."""
    if mode not in BALANCING:
        raise ValueError(f"class balancing mode must be one of {BALANCING}, got {mode!r}")
    idx = label_indices(label)
    if mode == "none":
        return torch.ones(idx.shape, dtype=torch.float32, device=idx.device)
    counts = torch.bincount(idx.flatten(), minlength=num_classes).to(torch.float32)
    if contain_dontcare:
        counts[0] = 0
    present = counts > 0
    total = float(idx.numel())  # B*H*W, dontcare pixels included (official: numel(label) / N)
    denom = counts.clamp_min(1.0)
    if mode == "official":
        denom = denom * present.sum().clamp_min(1)
    coeff = torch.where(present, total / denom, torch.zeros_like(counts))
    return coeff[idx]


def n_plus_one_loss(logits: torch.Tensor, label: torch.Tensor, for_real: bool, contain_dontcare: bool = True,
                    balancing: str = "eq4.3") -> torch.Tensor:
    """Mean (N+1)-class CE of D's logits (B, N+1, H, W) against ``label`` (Eq. 4.2 one term): class-balanced
    for real targets (and for G, Eq. 4.5), plain mean for the fake target."""
    target = n_plus_one_target(label, for_real)
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and label {tuple(label.shape)} sizes differ")
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    if for_real:
        ce = ce * class_balance_weights(label, logits.shape[1] - 1, contain_dontcare, balancing)
    return ce.mean()


def generator_loss(d_fake: torch.Tensor, label: torch.Tensor, contain_dontcare: bool = True,
                   balancing: str = "eq4.3") -> torch.Tensor:
    """Thesis Eq. 4.5: the balanced real-class CE of D(G(z, t)) against t (non-saturating)."""
    return n_plus_one_loss(d_fake, label, True, contain_dontcare, balancing)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor, label: torch.Tensor,
                       contain_dontcare: bool = True, balancing: str = "eq4.3") -> torch.Tensor:
    """Thesis Eq. 4.2: balanced real-class CE on D(x) + fake-class CE on D(G(z, t))."""
    return (n_plus_one_loss(d_real, label, True, contain_dontcare, balancing)
            + n_plus_one_loss(d_fake, label, False, contain_dontcare, balancing))


def labelmix_mask(label: torch.Tensor, per_image: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary mask M (B, 1, H, W) constant on every semantic class (thesis l.1077: "sampled based on the label
    map"): one random bit per class for the whole batch (official, ``per_image=False``) or per image.
    Unlike the official in-place relabelling, classes 0 and 1 never interact (reference notes §1.4)."""
    idx = label_indices(label)
    n = int(label.shape[1]) if label.dim() == 4 else int(idx.max()) + 1
    b = idx.shape[0]
    shape = (b, n) if per_image else (1, n)
    bits = torch.randint(0, 2, shape, generator=generator,
                         device=idx.device if generator is None else generator.device)
    bits = bits.to(idx.device).expand(b, n)
    return torch.gather(bits, 1, idx.flatten(1)).view_as(idx).unsqueeze(1).float()


def labelmix(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """LabelMix(a, b, M) = M * a + (1 - M) * b (thesis l.1077)."""
    return mask * a + (1 - mask) * b


def labelmix_consistency(d_mixed: torch.Tensor, d_real: torch.Tensor, d_fake: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
    """Thesis Eq. 4.4 (mean-reduced, see module doc): || D(LabelMix(x, x^)) - LabelMix(D(x), D(x^)) ||^2."""
    return F.mse_loss(d_mixed.float(), labelmix(d_real, d_fake, mask).float())


# --- CutMix (thesis Table 4.11) -------------------------------------------------------------------
MIXING = ("labelmix", "cutmix", "none")


def cutmix_mask(label: torch.Tensor, per_image: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """CutMix mask M (B, 1, H, W) (Yun et al. 2019, compared with LabelMix in thesis l.1326-1331): M = 0 inside
    one rectangle and 1 elsewhere, so ``labelmix(a, b, M)`` keeps ``a`` outside the box and pastes ``b`` inside
    ("x~ = M * x_A + (1 - M) * x_B"). lambda ~ U(0, 1) (Beta(1, 1)); box sides H*sqrt(1-lambda), W*sqrt(1-lambda)
    around a uniform centre, clipped to the image. One box for the whole batch (``per_image=False``; CutMix
    draws one box per mini-batch, our reading of the CutMix paper's algorithm) or one per image. Unlike
    LabelMix the mask ignores the label map, which only gives B, H, W (and the device)."""
    idx = label_indices(label)
    b, h, w = idx.shape
    n = b if per_image else 1
    dev = idx.device if generator is None else generator.device
    lam, cy, cx = torch.rand((3, n), generator=generator, device=dev).to(idx.device)
    cut = torch.sqrt(1.0 - lam)
    cy, cx = cy * h, cx * w
    y0 = (cy - cut * h / 2).round().clamp(0, h).long()
    y1 = (cy + cut * h / 2).round().clamp(0, h).long()
    x0 = (cx - cut * w / 2).round().clamp(0, w).long()
    x1 = (cx + cut * w / 2).round().clamp(0, w).long()
    ys = torch.arange(h, device=idx.device).view(1, h, 1)
    xs = torch.arange(w, device=idx.device).view(1, 1, w)
    inside = ((ys >= y0.view(n, 1, 1)) & (ys < y1.view(n, 1, 1))
              & (xs >= x0.view(n, 1, 1)) & (xs < x1.view(n, 1, 1)))
    return (~inside).float().expand(b, h, w).unsqueeze(1).contiguous()


def mixing_mask(label: torch.Tensor, mode: str, per_image: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor | None:
    """The consistency-regularisation mask of ``mode`` in ``MIXING`` (thesis Table 4.11): LabelMix, CutMix,
    or None for "none". Both masks mix with :func:`labelmix` and enter :func:`labelmix_consistency`."""
    if mode == "labelmix":
        return labelmix_mask(label, per_image=per_image, generator=generator)
    if mode == "cutmix":
        return cutmix_mask(label, per_image=per_image, generator=generator)
    if mode == "none":
        return None
    raise ValueError(f"mixing must be one of {MIXING}, got {mode!r}")


def mixed_n_plus_one_target(label: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel (N+1)-class identity of a mixed image ``labelmix(real, fake, mask)`` whose real and fake parts
    share the label map: class c + 1 where the pixel comes from the real image (M = 1), 0 (fake) elsewhere."""
    real = n_plus_one_target(label, True)
    m = mask[:, 0] if mask.dim() == 4 else mask
    return torch.where(m.bool(), real, torch.zeros_like(real))
