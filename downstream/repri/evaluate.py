"""RePRI evaluation on COCO-20i: preprocessing, per-class IoU accumulated over the tasks of a run, mIoU over
the test classes, mean over runs (reference notes downstream-protocols §3.2).

Per run: ``test_num`` tasks; for each, the query and support images are resized (Resize(417), see
:func:`preprocess`), features extracted, L2-normalised (``norm_feat``), the RePRI classifier adapted, query
logits upsampled to 417x417 (bilinear, align_corners=True) and compared with the binarised query label (255
ignored). Intersections and unions of the foreground are summed per class over the run; IoU_c = I_c / (U_c +
1e-10); the run's mIoU is the mean over the classes that occurred; the reported value is the mean over runs.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import DataError
from gan_core.utils.images import read_image

from .classifier import IGNORE, downsample_labels, repri_adapt
from .config import RePRIConfig
from .episodes import DatasetIndex, Episode, Pair, foreground, read_label, sample_episodes
from .pspnet import PSPNet

log = logging.getLogger("downstream.repri")


def resized_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """Official Resize: long side -> size, other side scaled (truncated), both floored to multiples of 8."""
    if h >= w:
        nh, nw = size, int(w * size / h)
    else:
        nh, nw = int(h * size / w), size
    return nh // 8 * 8, nw // 8 * 8


def preprocess(image: np.ndarray, label: np.ndarray, cfg: RePRIConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H,W,3) + label (H,W) -> normalised image (3,S,S) and label (S,S): resize keeping the aspect
    (image bilinear, label nearest), pad bottom/right (image 0 before normalisation, label 255)."""
    s = cfg.image_size
    nh, nw = resized_hw(*label.shape, s)
    img = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float()
    img = F.interpolate(img, (nh, nw), mode="bilinear", align_corners=False)[0]
    lab = F.interpolate(torch.from_numpy(label)[None, None].float(), (nh, nw), mode="nearest")[0, 0].long()
    out_img = torch.zeros(3, s, s)
    out_img[:, :nh, :nw] = img
    out_lab = torch.full((s, s), IGNORE, dtype=torch.long)
    out_lab[:nh, :nw] = lab
    mean = torch.tensor(cfg.mean).view(3, 1, 1) * 255
    std = torch.tensor(cfg.std).view(3, 1, 1) * 255
    return (out_img - mean) / std, out_lab


def load_pair(image_path, label_path, class_id: int, mode: str, cfg: RePRIConfig):
    img, lab = read_image(image_path), read_label(label_path)
    if img.shape[:2] != lab.shape:
        raise DataError(label_path, f"label size {lab.shape[::-1]} differs from image {image_path} "
                                    f"size {img.shape[1::-1]}")
    return preprocess(img, foreground(lab, class_id, mode), cfg)


def _extract(model: PSPNet, images: torch.Tensor, device: torch.device, norm: bool) -> torch.Tensor:
    with torch.no_grad():
        f = model.extract_features(images.to(device))
    return F.normalize(f, dim=1) if norm else f


def intersection_union(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground intersection and union per task for binary predictions and 0/1/255 labels (T, H, W);
    pixels labelled 255 are ignored (official ``batch_intersectionAndUnionGPU``, class 1)."""
    valid = gt != IGNORE
    inter = ((pred == 1) & (gt == 1) & valid).flatten(1).sum(1)
    union = (((pred == 1) | (gt == 1)) & valid).flatten(1).sum(1)
    return inter, union


def task_shots(ep: Episode, cfg: RePRIConfig) -> int:
    """Support pairs of a task: real + synthetic, or real + ``max_synthetic`` augmented copies when standard
    augmentation runs without synthetic pairs (RePRIConfig.standard_aug)."""
    if cfg.standard_aug and not ep.synthetic:
        return len(ep.supports) + cfg.max_synthetic
    return ep.n_shots


def augmented_supports(pairs: list[tuple[torch.Tensor, torch.Tensor]], n: int, generator: torch.Generator
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` pairs drawn in turn from ``pairs`` (preprocessed image (3,S,S), label (S,S)), each independently
    flipped/zoomed/rotated with OSVOS' standard augmentation (see RePRIConfig.standard_aug)."""
    from ..osvos.augment import standard_augment

    if n == 0:
        return []
    img = torch.stack([pairs[i % len(pairs)][0] for i in range(n)])
    lab = torch.stack([pairs[i % len(pairs)][1] for i in range(n)])[:, None].float()
    a_img, a_lab = standard_augment(img, lab, generator)
    return [(a_img[i], a_lab[i, 0].round().long()) for i in range(n)]


def run_tasks(model: PSPNet, index: DatasetIndex, episodes: list[Episode], cfg: RePRIConfig,
              device: torch.device, generator: torch.Generator | None = None
              ) -> tuple[list[tuple[int, int, int]], int]:
    """Adapt and predict a batch of tasks; returns (class, intersection, union) per task and the number of tasks
    skipped because no support had foreground at the feature resolution. ``generator`` drives the standard
    augmentation (required when ``cfg.standard_aug``)."""
    if cfg.standard_aug and generator is None:
        generator = torch.Generator().manual_seed(cfg.seed)
    qi, ql, s_img, s_lab = [], [], [], []
    for ep in episodes:
        it = index.items[ep.query]
        img, lab = load_pair(it.image, it.label, ep.class_id, "class_id", cfg)
        qi.append(img), ql.append(lab)
        pairs = [load_pair(index.items[s].image, index.items[s].label, ep.class_id, "class_id", cfg)
                 for s in ep.supports]
        extra = [load_pair(p[0], p[1], ep.class_id, cfg.synthetic_foreground, cfg) for p in ep.synthetic]
        if cfg.standard_aug:
            extra = augmented_supports(extra or pairs, task_shots(ep, cfg) - len(pairs), generator)
        pairs += extra
        s_img.append(torch.stack([p[0] for p in pairs])), s_lab.append(torch.stack([p[1] for p in pairs]))
    fq = _extract(model, torch.stack(qi), device, cfg.norm_feat)[:, None]
    t, smax, hw = len(episodes), max(len(x) for x in s_img), fq.shape[-2:]
    fs = torch.zeros(t, smax, *fq.shape[2:], device=device)
    # support labels kept at the feature resolution (the classifier's nearest downsampling is then the identity)
    gs = torch.full((t, smax, *hw), IGNORE, dtype=torch.long, device=device)
    for i, (im, lb) in enumerate(zip(s_img, s_lab)):
        fs[i, :len(im)] = _extract(model, im, device, cfg.norm_feat)
        gs[i, :len(lb)] = downsample_labels(lb[None], hw)[0].to(device)
    gq = torch.stack(ql).to(device)
    has_fg = (gs == 1).flatten(1).any(1)
    for i in torch.nonzero(~has_fg).flatten().tolist():
        log.warning("task skipped: class %d, query %s: no support foreground at the feature resolution",
                    episodes[i].class_id, index.items[episodes[i].query].stem)
    keep = has_fg.nonzero().flatten()
    if len(keep) == 0:
        return [], t
    n_shots = torch.tensor([len(s_img[i]) for i in keep.tolist()], device=device)
    state = repri_adapt(fs[keep], gs[keep], fq[keep], (gq[keep] != IGNORE)[:, None], n_shots, cfg)
    pred = state.predict(fq[keep], (cfg.image_size, cfg.image_size))
    inter, union = intersection_union(pred, gq[keep])
    out = [(episodes[i].class_id, int(a), int(b)) for i, a, b in zip(keep.tolist(), inter, union)]
    return out, t - len(keep)


def evaluate(model: PSPNet, index: DatasetIndex, cfg: RePRIConfig, device: torch.device,
             support_pool: dict[int, list[int]] | None = None,
             synthetic: Callable[[int, str], list[Pair]] | None = None) -> dict:
    """All runs. Returns {"value": mean mIoU over runs (in %), "runs": [...], "per_class": {class: mean IoU %},
    "skipped_episodes", "skipped_tasks", "mean_shots"}."""
    model = model.to(device).eval()
    start, runs, per_class_runs = 0, [], defaultdict(list)
    skipped_ep = skipped_tasks = 0
    shots = []
    for r in range(cfg.n_runs):
        rng = np.random.default_rng(cfg.seed + r)
        aug_gen = torch.Generator().manual_seed(cfg.seed + r + 7919)  # standard augmentation of run r
        sampling = sample_episodes(index, cfg.test_num, rng, cfg.shot, start, support_pool, synthetic,
                                   cfg.max_synthetic)
        start = sampling.next_start
        skipped_ep += sampling.skipped
        inter, union = defaultdict(int), defaultdict(int)
        eps = sampling.episodes
        for b in range(0, len(eps), cfg.batch_tasks):
            batch = eps[b:b + cfg.batch_tasks]
            shots += [task_shots(e, cfg) for e in batch]
            res, sk = run_tasks(model, index, batch, cfg, device, aug_gen)
            skipped_tasks += sk
            for c, i, u in res:
                inter[c] += i
                union[c] += u
        iou = {c: inter[c] / (union[c] + 1e-10) for c in union}
        miou = float(np.mean(list(iou.values()))) if iou else float("nan")
        log.info("run %d: mIoU %.4f over %d classes", r, miou, len(iou))
        runs.append({"run": r, "seed": cfg.seed + r, "miou": 100 * miou,
                     "per_class": {str(c): 100 * v for c, v in sorted(iou.items())}})
        for c, v in iou.items():
            per_class_runs[c].append(100 * v)
    return {"value": float(np.mean([x["miou"] for x in runs])),
            "runs": runs,
            "per_class": {str(c): float(np.mean(v)) for c, v in sorted(per_class_runs.items())},
            "skipped_episodes": skipped_ep, "skipped_tasks": skipped_tasks,
            "mean_shots": float(np.mean(shots)) if shots else 0.0}
