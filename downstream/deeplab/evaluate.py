"""mIoU of a trained DeepLab-V3 on a validation set (thesis Tables 4.6, 4.7).

Each image is resized to ``cfg.image_size`` (the training resolution), the logits are bilinearly
upsampled to the label map's own size and arg-maxed; the confusion matrix is accumulated over the whole
set (:mod:`gan_core.metrics.segmentation`), ``ignore_index`` pixels left out. Optionally the classes are
grouped by their pixel frequency in a training label folder (Table 4.7 groups).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import DataError
from gan_core.metrics.segmentation import (ConfusionAccumulator, iou_by_frequency_groups, label_pixel_counts,
                                           summarise)
from gan_core.utils.dataclass_config import from_dict

from .config import DeepLabConfig
from .data import SegmentationSet, image_tensor, list_pairs, normalise, read_label_map, transform_labels
from .model import DeepLabV3, build_deeplab


def load_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[DeepLabV3, DeepLabConfig]:
    """A model from ``model.pt`` (written by training) or the loop's ``checkpoint.pt`` next to a ``done.json``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(path, "checkpoint does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(path, f"cannot load with torch.load(weights_only=True): {exc}") from exc
    if "trainer" in ckpt:  # loop checkpoint: config and class count come from done.json
        import json

        done = path.parent / "done.json"
        if not done.is_file():
            raise DataError(path, "loop checkpoint without done.json beside it; pass model.pt instead")
        meta = json.loads(done.read_text())
        ckpt = {"model": ckpt["trainer"]["model"], "config": meta["config"], "num_classes": meta["num_classes"]}
    if not {"model", "config", "num_classes"} <= set(ckpt):
        raise DataError(path, "not a DeepLab checkpoint (needs keys model, config, num_classes)")
    cfg = from_dict(DeepLabConfig, {**ckpt["config"], "pretrained_backbone": False}, where=str(path))
    model = build_deeplab(cfg, int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise DataError(path, f"weights do not fit the configured network: {exc}") from exc
    return model.to(device).eval(), cfg


@torch.no_grad()
def predict(model: DeepLabV3, images: list[np.ndarray], sizes: list[tuple[int, int]], cfg: DeepLabConfig,
            device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Label maps (int64, on CPU) at ``sizes`` for uint8 (H, W, 3) images, processed at ``cfg.image_size``."""
    x = normalise(torch.stack([image_tensor(im, tuple(cfg.image_size)) for im in images])).to(device)
    logits = model(x).float()
    return [F.interpolate(logits[i:i + 1], size=s, mode="bilinear", align_corners=True)[0].argmax(0).cpu()
            for i, s in enumerate(sizes)]


def confusion_on_set(model: DeepLabV3, data: SegmentationSet, num_classes: int,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """(K, K) confusion over the whole set (rows = ground truth)."""
    from gan_core.utils.images import read_image

    cfg = data.cfg
    acc = ConfusionAccumulator(num_classes, cfg.ignore_index)
    for start in range(0, len(data), cfg.eval_batch):
        idx = range(start, min(len(data), start + cfg.eval_batch))
        images = [read_image(data.pairs[i][0]) for i in idx]
        labels = [torch.from_numpy(data.raw_label(i)) for i in idx]
        for i, im, lab in zip(idx, images, labels):
            if im.shape[:2] != tuple(lab.shape):
                raise DataError(data.pairs[i][1], f"label size differs from image {data.pairs[i][0]}")
        preds = predict(model, images, [tuple(lab.shape) for lab in labels], cfg, device)
        for i, p, lab in zip(idx, preds, labels):
            try:
                acc.update(p, lab)
            except ValueError as exc:
                raise DataError(data.pairs[i][1], str(exc)) from exc
    return acc.matrix


def class_frequencies(labels_dir: str | Path, cfg: DeepLabConfig, num_classes: int) -> np.ndarray:
    """Pixel count of every class over a folder of label PNGs (training set), for the frequency groups."""
    files = sorted(Path(labels_dir).glob("*.png"))
    if not files:
        raise DataError(labels_dir, "no label PNGs found")
    total = np.zeros(num_classes, dtype=np.int64)
    for f in files:
        lab = transform_labels(read_label_map(f), cfg.label_transform, cfg.ignore_index)
        try:
            total += label_pixel_counts(lab, num_classes, cfg.ignore_index)
        except ValueError as exc:
            raise DataError(f, str(exc)) from exc
    return total


def evaluate_checkpoint(checkpoint: str | Path, images_dir: str | Path, labels_dir: str | Path, num_classes: int,
                        ignore_index: int | None = None, device: torch.device | str = "cpu",
                        groups: str | None = None, freq_labels: str | Path | None = None) -> dict[str, Any]:
    """JSON-ready result: mIoU (in %, as the thesis tables), pixel accuracy, per-class IoU, optional groups."""
    model, cfg = load_model(checkpoint, device)
    if model.num_classes != num_classes:
        raise DataError(checkpoint, f"model has {model.num_classes} classes, --num-classes is {num_classes}")
    if ignore_index is not None:
        cfg.ignore_index = int(ignore_index)
    data = SegmentationSet(list_pairs(images_dir, labels_dir), cfg)
    conf = confusion_on_set(model, data, num_classes, device)
    out = summarise(conf)
    out["miou_percent"] = 100.0 * out["miou"]
    out["n_images"] = len(data)
    if groups:
        if freq_labels is None:
            raise DataError(labels_dir, "frequency groups need the training label folder (--freq-labels)")
        out["frequency_groups"] = iou_by_frequency_groups(conf, class_frequencies(freq_labels, cfg, num_classes), groups)
    return out
