"""Semantic-segmentation scores from a confusion matrix (mIoU, pixel accuracy, per-class IoU).

Conventions (the standard dataset-level protocol, reference notes §2.7):

* The confusion matrix ``C`` has shape (K, K): ``C[g, p]`` counts pixels with ground-truth
  class ``g`` predicted as ``p``. It is accumulated over a whole set (not averaged per
  image). Pixels whose ground truth equals ``ignore_index`` are left out.
* ``IoU_c = C[c, c] / (sum_p C[c, p] + sum_g C[g, c] - C[c, c]) = TP / (TP + FP + FN)``.
* mIoU is the mean over the classes **present**, i.e. with a non-empty union (in the ground
  truth or in the prediction). Classes absent from both get IoU = NaN and are excluded, as
  usual (nan-mean); a class that is predicted but never in the ground truth counts with IoU 0.
* Pixel accuracy = trace(C) / sum(C).

Also here: per-image, per-class IoU and the *thresholded* IoU score of the OSMIS evaluation
code (reference notes, downstream-protocols §7), and the grouping of classes by pixel-wise
frequency of thesis Tables 4.4 and 4.7 (thesis l.1205-1219, l.1270-1282).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

# Class groups of the thesis tables: inclusive ranges of ranks after sorting the classes by
# descending pixel-wise frequency in the training set (thesis l.1205: "the semantic classes are
# sorted by their pixel-wise frequency in the training images").
ADE20K_GROUPS: tuple[tuple[int, int], ...] = ((0, 29), (30, 59), (60, 89), (90, 119), (120, 149))  # Table 4.4
CITYSCAPES_GROUPS: tuple[tuple[int, int], ...] = ((0, 4), (5, 8), (9, 12), (13, 18))  # Table 4.7
GROUP_PRESETS: dict[str, tuple[tuple[int, int], ...]] = {"ade20k": ADE20K_GROUPS, "cityscapes": CITYSCAPES_GROUPS}


def _as_tensor(x: Any, device: torch.device | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"label maps must be integer tensors, got {t.dtype}")
    return t.to(device=device, dtype=torch.int64) if device is not None else t.long()


def confusion_matrix(pred: Any, target: Any, num_classes: int, ignore_index: int | None = 255) -> torch.Tensor:
    """(K, K) int64 counts, rows = ground truth, columns = prediction, for label maps of any
    (equal) shape, e.g. a batch (B, H, W). Runs on the device of ``target`` (one ``bincount``).

    Ground-truth pixels equal to ``ignore_index`` are skipped. Any other label outside
    0..K-1, in the target or in the prediction of a counted pixel, raises ValueError.
    """
    target = _as_tensor(target)
    pred = _as_tensor(pred, target.device)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t, p = target.reshape(-1), pred.reshape(-1)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    for name, v in (("target", t), ("prediction", p)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(
                f"{name} has labels outside 0..{num_classes - 1} (min {int(v.min())}, max {int(v.max())})"
                + (f"; ignore_index is {ignore_index}" if ignore_index is not None else "")
            )
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionAccumulator:
    """Accumulates :func:`confusion_matrix` over batches (on ``device``)."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device: torch.device | str = "cpu"):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64, device=device)

    def update(self, pred: Any, target: Any) -> None:
        target = _as_tensor(target, self.matrix.device)
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def numpy(self) -> np.ndarray:
        return self.matrix.cpu().numpy()


def _conf(confusion: Any) -> np.ndarray:
    c = confusion.detach().cpu().numpy() if isinstance(confusion, torch.Tensor) else np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {c.shape}")
    return c.astype(np.float64)


def per_class_iou(confusion: Any) -> np.ndarray:
    """IoU of every class (float64, K); NaN where the class is absent from GT and prediction."""
    c = _conf(confusion)
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(confusion: Any) -> float:
    """Mean IoU over the classes with a non-empty union (NaN if there is none)."""
    iou = per_class_iou(confusion)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(confusion: Any) -> float:
    """Fraction of counted pixels predicted correctly (NaN for an empty matrix)."""
    c = _conf(confusion)
    total = c.sum()
    return float(np.trace(c) / total) if total > 0 else float("nan")


def label_pixel_counts(labels: Any, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Pixel count of each class 0..K-1 in a label map (or batch); ``ignore_index`` skipped."""
    t = _as_tensor(labels).reshape(-1)
    if ignore_index is not None:
        t = t[t != ignore_index]
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"labels outside 0..{num_classes - 1} (min {int(t.min())}, max {int(t.max())})")
    return torch.bincount(t, minlength=num_classes).cpu().numpy().astype(np.int64)


def parse_groups(spec: str | Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    """Groups from a preset name ('ade20k', 'cityscapes'), a string '0-4,5-8,...' or pairs."""
    if isinstance(spec, str):
        if spec in GROUP_PRESETS:
            return GROUP_PRESETS[spec]
        try:
            pairs = [tuple(int(v) for v in part.split("-")) for part in spec.split(",") if part.strip()]
        except ValueError:
            pairs = []
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ValueError(f"groups must be a preset {sorted(GROUP_PRESETS)} or 'a-b,c-d,...', got {spec!r}")
    else:
        pairs = [tuple(int(v) for v in p) for p in spec]
    for a, b in pairs:
        if a < 0 or b < a:
            raise ValueError(f"invalid rank range {a}-{b} (need 0 <= first <= last)")
    return tuple((int(a), int(b)) for a, b in pairs)


def iou_by_frequency_groups(
    confusion: Any, class_pixel_freq: Sequence[float], groups: str | Sequence[Sequence[int]] = ADE20K_GROUPS,
) -> dict[str, Any]:
    """Mean IoU per group of classes ranked by pixel-wise frequency (thesis Tables 4.4 / 4.7).

    ``class_pixel_freq[c]`` is the pixel count (or fraction) of class ``c`` in the training set.
    Classes are sorted by descending frequency (ties: lower class id first); group ``(a, b)``
    holds the classes of ranks a..b inclusive (ranks beyond K are ignored). Each group's value is
    the nan-mean of the per-class IoU of its members (absent classes excluded, as in
    :func:`mean_iou`); ``pixel_fraction`` is the group's share of all pixels (the tables'
    "pixel-wise frequency" column). The ``"all"`` entry is the mIoU over all classes.
    """
    iou = per_class_iou(confusion)
    freq = np.asarray(class_pixel_freq, dtype=np.float64)
    if freq.shape != iou.shape:
        raise ValueError(f"class_pixel_freq has {freq.size} entries but the confusion matrix has {iou.size} classes")
    if (freq < 0).any():
        raise ValueError("class_pixel_freq must be non-negative")
    order = np.lexsort((np.arange(freq.size), -freq))  # descending frequency, then class id
    total = freq.sum()
    out_groups = []
    for a, b in parse_groups(groups):
        members = order[a:b + 1]
        vals = iou[members]
        out_groups.append({
            "ranks": [a, b],
            "label": f"{a}-{b}",
            "classes": members.tolist(),
            "pixel_fraction": float(freq[members].sum() / total) if total > 0 else float("nan"),
            "miou": float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan"),
            "n_present": int(np.isfinite(vals).sum()),
        })
    return {"groups": out_groups, "all": mean_iou(confusion), "order": order.tolist()}


# --------------------------------------------------------------------- per-image IoU (OSMIS)
def per_image_class_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                        ignore_index: int | None = 255, smooth: float = 1e-6) -> torch.Tensor:
    """(B, K) IoU of each image and class with the smoothing of the OSMIS evaluation code:
    ``(|P & T| + smooth) / (|P | T| + smooth)``, so a class absent from both prediction and
    target in an image scores 1. Pixels with target ``ignore_index`` are left out.
    """
    target = _as_tensor(target)
    pred = _as_tensor(pred, target.device)
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"expected pred and target of equal shape (B, H, W), got {tuple(pred.shape)}, {tuple(target.shape)}")
    valid = (target != ignore_index) if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    classes = torch.arange(num_classes, device=target.device)[None, :, None, None]
    p = (pred[:, None] == classes) & valid[:, None]
    t = (target[:, None] == classes) & valid[:, None]
    inter = (p & t).sum(dim=(2, 3)).double()
    union = (p | t).sum(dim=(2, 3)).double()
    return (inter + smooth) / (union + smooth)


def thresholded_iou(iou: torch.Tensor | np.ndarray | float) -> torch.Tensor:
    """The OSMIS score ``ceil(clamp(20 * (IoU - 0.5), 0, 10)) / 10`` = the fraction of the
    thresholds 0.5, 0.55, ..., 0.95 that the IoU exceeds (strictly, up to the ceiling)."""
    iou_t = torch.as_tensor(iou, dtype=torch.float64)
    return torch.clamp(20.0 * (iou_t - 0.5), 0.0, 10.0).ceil() / 10.0


def summarise(confusion: Any, class_names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """JSON-ready summary: mIoU, pixel accuracy, per-class IoU (None for absent classes)."""
    iou = per_class_iou(confusion)
    names = class_names or {}
    return {
        "miou": mean_iou(confusion),
        "pixel_accuracy": pixel_accuracy(confusion),
        "per_class_iou": {str(names.get(c, c)): (None if np.isnan(v) else float(v)) for c, v in enumerate(iou)},
        "n_classes_present": int(np.isfinite(iou).sum()),
        "num_classes": int(iou.size),
    }
