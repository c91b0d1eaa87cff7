"""DAVIS region similarity J, contour accuracy F and J&F, as the davis2017-evaluation toolkit computes them.

Written from the description in the reference notes (downstream-protocols.md §6.1-6.3), semi-supervised task:

* GT: palette indices; void (255) set to background. 2017 mode: objects ``1..max(first GT frame)``, each scored
  separately. 2016 mode (as the DAVIS-16 fork evaluating from a DAVIS-2017 root): GT objects merged (> 0),
  predictions binarised (> 0; ours are id maps, so no 0/255 ambiguity), one object per sequence.
* The first and the last frame are not evaluated; prediction files are read only for the evaluated frames.
* A prediction index above the number of GT objects is an error (the toolkit aborts); objects missing from
  the predictions count as empty masks.
* J = |P & G| / |P | G|, 1 when the union is empty.
* F: boundaries by ``seg2bmap``; tolerance ``ceil(0.008 * ||(H, W)||)`` pixels (8 at 480x854); each boundary
  dilated with ``disk(r)``; precision/recall of matched boundary pixels; F = 2PR / (P + R) (0 if P + R = 0);
  empty-boundary special cases as in the toolkit.
* Per object: mean over frames (M), recall = mean(x > 0.5) (R), decay = mean of the first quarter minus mean
  of the last quarter (D). J-Mean / F-Mean = mean over all objects of all sequences; J&F = (J-Mean + F-Mean)/2.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation

from gan_core.errors import ConfigError, DataError
from gan_core.utils.images import read_mask

VOID = 255
BOUND_TH = 0.008
METRIC_COLUMNS = ["J", "J-Recall", "J-Decay", "F", "F-Recall", "F-Decay"]


# ---------------------------------------------------------------------------------------------- measures
def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask (toolkit ``_seg2bmap`` at the mask's own size)."""
    seg = np.asarray(seg).astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """Boolean (2r+1)x(2r+1) disk footprint x^2 + y^2 <= r^2 (equals skimage.morphology.disk)."""
    r = int(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def bound_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * np.linalg.norm(shape)))


def f_measure(fg: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Contour accuracy F of a predicted binary mask ``fg`` against ``gt`` (one frame)."""
    fg = np.asarray(fg).astype(bool)
    gt = np.asarray(gt).astype(bool)
    footprint = disk(bound_pixels(fg.shape, bound_th))
    fb, gb = seg2bmap(fg), seg2bmap(gt)
    nf, ng = int(fb.sum()), int(gb.sum())
    if nf == 0 and ng > 0:
        precision, recall = 1.0, 0.0
    elif nf > 0 and ng == 0:
        precision, recall = 0.0, 1.0
    elif nf == 0 and ng == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = float((fb & binary_dilation(gb, footprint)).sum()) / nf
        recall = float((gb & binary_dilation(fb, footprint)).sum()) / ng
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def jaccard(fg: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Region similarity J over the last two axes (1 where the union is empty)."""
    fg = np.asarray(fg).astype(bool)
    gt = np.asarray(gt).astype(bool)
    inter = (fg & gt).sum(axis=(-2, -1))
    union = (fg | gt).sum(axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall = fraction > 0.5, decay) of per-frame values, as the toolkit's ``db_statistics``."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


# ---------------------------------------------------------------------------------------------- sequences
def _check_mode(mode: str) -> str:
    mode = str(mode)
    if mode not in ("2016", "2017"):
        raise ConfigError(f"DAVIS evaluation mode must be '2016' or '2017', got {mode!r}")
    return mode


def evaluate_sequence(gt_masks: Sequence[np.ndarray], pred_masks: Sequence[np.ndarray], mode: str = "2017",
                      pred_names: Sequence[str] | None = None) -> dict[int, dict[str, float]]:
    """J/F statistics per object of one sequence.

    ``gt_masks``: all annotated frames (label maps, 255 = void). ``pred_masks``: the predictions of the same
    frames (id maps); entries for the first and last frame are ignored and may be None. ``pred_names`` (one per
    frame) name the files in errors. Returns ``{object_id: {"J", "J-Recall", "J-Decay", "F", ...}}``.
    """
    mode = _check_mode(mode)
    n = len(gt_masks)
    if len(pred_masks) != n:
        raise ValueError(f"{len(pred_masks)} predictions for {n} annotated frames")
    if n < 3:
        raise ValueError(f"a sequence needs >= 3 annotated frames (first and last are not evaluated), got {n}")
    names = list(pred_names) if pred_names is not None else [f"prediction {i}" for i in range(n)]
    gt = np.stack([np.where(np.asarray(g) == VOID, 0, np.asarray(g)) for g in gt_masks[1:-1]])
    preds = []
    for g, p, name in zip(gt_masks[1:-1], pred_masks[1:-1], names[1:-1]):
        p = np.asarray(p)
        if p.shape != np.asarray(g).shape:
            raise DataError(name, f"prediction size {p.shape[::-1]} differs from the annotation size {np.asarray(g).shape[::-1]}")
        preds.append(p)
    pred = np.stack(preds)
    if mode == "2016":
        gt_objs, pred_objs, ids = (gt > 0)[None], (pred > 0)[None], [1]
    else:
        first = np.asarray(gt_masks[0])
        n_obj = int(np.where(first == VOID, 0, first).max())
        if pred.max() > n_obj:
            bad = int(np.argmax(pred.reshape(len(pred), -1).max(axis=1) > n_obj))
            raise DataError(names[1 + bad], f"prediction index {int(preds[bad].max())} is above the number of "
                                            f"ground-truth objects ({n_obj})")
        ids = list(range(1, n_obj + 1))
        obj = np.asarray(ids)[:, None, None, None]
        gt_objs, pred_objs = gt[None] == obj, pred[None] == obj
    result: dict[int, dict[str, float]] = {}
    for k, oid in enumerate(ids):
        j = jaccard(pred_objs[k], gt_objs[k])
        f = np.array([f_measure(pred_objs[k][t], gt_objs[k][t]) for t in range(len(gt))])
        jm, jr, jd = statistics(j)
        fm, fr, fd = statistics(f)
        result[oid] = {"J": jm, "J-Recall": jr, "J-Decay": jd, "F": fm, "F-Recall": fr, "F-Decay": fd}
    return result


def read_sequence(results_dir: str | Path, davis_root: str | Path, sequence: str, pred_subdir: str = ""
                  ) -> tuple[list[np.ndarray], list[np.ndarray | None], list[str]]:
    """GT label maps of all annotated frames and the predictions of the evaluated (inner) frames."""
    ann_dir = Path(davis_root) / "Annotations" / "480p" / sequence
    ann_paths = sorted(ann_dir.glob("*.png"))
    if not ann_paths:
        raise DataError(ann_dir, "no annotation PNGs found")
    gts = [read_mask(p) for p in ann_paths]
    pred_paths = [Path(results_dir) / sequence / pred_subdir / p.name for p in ann_paths]
    preds: list[np.ndarray | None] = [None] * len(ann_paths)
    for i in range(1, len(ann_paths) - 1):
        if not pred_paths[i].is_file():
            raise DataError(pred_paths[i], "prediction file is missing")
        preds[i] = read_mask(pred_paths[i])
    return gts, preds, [str(p) for p in pred_paths]


def default_sequences(davis_root: str | Path, mode: str) -> list[str]:
    path = Path(davis_root) / "ImageSets" / _check_mode(mode) / "val.txt"
    if not path.is_file():
        raise DataError(path, "sequence list does not exist")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def evaluate(results_dir: str | Path, davis_root: str | Path, sequences: Sequence[str] | None = None,
             mode: str = "2017", pred_subdir: str = "") -> pd.DataFrame:
    """One row per (sequence, object) with J/F statistics; in 2016 mode one row per sequence.

    ``results_dir/<sequence>/[pred_subdir/]<frame>.png`` are indexed PNGs; ``sequences`` defaults to
    ``ImageSets/<mode>/val.txt``.
    """
    mode = _check_mode(mode)
    seqs = list(sequences) if sequences else default_sequences(davis_root, mode)
    rows = []
    for seq in seqs:
        gts, preds, names = read_sequence(results_dir, davis_root, seq, pred_subdir)
        for oid, res in evaluate_sequence(gts, preds, mode, names).items():
            rows.append({"sequence": seq, "object": oid, **res, "J&F": (res["J"] + res["F"]) / 2.0})
    return pd.DataFrame(rows, columns=["sequence", "object", "J&F", *METRIC_COLUMNS])


def summarise(df: pd.DataFrame) -> dict[str, float]:
    """Toolkit global numbers: J-Mean and F-Mean over all objects, J&F = their average."""
    if len(df) == 0:
        raise ValueError("no evaluated objects")
    j, f = float(df["J"].mean()), float(df["F"].mean())
    return {"J": j, "F": f, "J&F": (j + f) / 2.0}
