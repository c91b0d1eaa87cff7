"""mIoU of generated images under an external pre-trained segmenter (thesis Chapter 4, l.1123:
UperNet101 for ADE20K, multi-scale DRN-D-105 for Cityscapes, DeepLabV2 for COCO-Stuff).

Protocol (thesis l.1123; OASIS#5, reference notes baselines.md §4.2): every generated image is
segmented **at its own (generated) resolution** -- 256x256 ADE20K / COCO-Stuff, 256x512 Cityscapes
(thesis l.1112) -- and compared with the label map it was generated from. A label map of another size
is resized to the image size with nearest neighbour (PIL NEAREST, as our data loader does). The
confusion matrix is accumulated over the whole set on the device (one ``bincount`` per batch, via
:mod:`gan_core.metrics.segmentation`), and mIoU / pixel accuracy / per-class IoU come from the same
module (mIoU over the classes present in ground truth or prediction).

Inputs: ``images/<stem>.png`` (generated) for every ``labels/<stem>.png``. Ground truth per dataset
(raw values of the label PNGs, as stored by the datasets and read by our loaders):

* ``ade20k``: ADEChallengeData2016 annotations, 0 = unknown -> ignored, 1..150 -> class 0..149
  (CSAILVision ``segm_transform``: label - 1). Other values: DataError.
* ``cityscapes``: gtFine ``*_labelIds.png`` (ids 0..33) -> the 19 train ids, everything else 255 =
  ignored (:data:`CITYSCAPES_LABELID_TO_TRAINID`). Values > 33: DataError.
* ``cocostuff``: our loader's convention (gan_core.data.semantic ``read_cocostuff_label``): the raw
  COCO-Stuff 164k PNG stores category id - 1 = 0..181, 255 = unlabeled. DeepLabV2-cocostuff164k was
  trained on exactly these raw values (deeplab-pytorch libs/datasets/cocostuff.py reads the PNG as is,
  ``N_CLASSES 182``, ``IGNORE_LABEL 255``), so class = raw value, 255 ignored. Values 182..254: DataError.

Pre-processing and multi-scale fusion per segmenter: :class:`gan_core.nets.segmenters.EvalProtocol`
(registry.py documents each value and its source).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError, DataError
from ..nets.segmenters.blocks import resize_logits
from ..nets.segmenters.registry import EvalProtocol
from ..utils.images import read_image
from .segmentation import ConfusionAccumulator, summarise

IGNORE = 255

# Cityscapes label id -> train id (255 = ignored in evaluation), the table of cityscapesScripts
# cityscapesscripts/helpers/labels.py (mcordts/cityscapesScripts; columns 'id' and 'trainId').
# 'license plate' has id -1 and never appears in *_labelIds.png.
CITYSCAPES_LABELID_TO_TRAINID: dict[int, int] = {
    0: 255,   # unlabeled
    1: 255,   # ego vehicle
    2: 255,   # rectification border
    3: 255,   # out of roi
    4: 255,   # static
    5: 255,   # dynamic
    6: 255,   # ground
    7: 0,     # road
    8: 1,     # sidewalk
    9: 255,   # parking
    10: 255,  # rail track
    11: 2,    # building
    12: 3,    # wall
    13: 4,    # fence
    14: 255,  # guard rail
    15: 255,  # bridge
    16: 255,  # tunnel
    17: 5,    # pole
    18: 255,  # polegroup
    19: 6,    # traffic light
    20: 7,    # traffic sign
    21: 8,    # vegetation
    22: 9,    # terrain
    23: 10,   # sky
    24: 11,   # person
    25: 12,   # rider
    26: 13,   # car
    27: 14,   # truck
    28: 15,   # bus
    29: 255,  # caravan
    30: 255,  # trailer
    31: 16,   # train
    32: 17,   # motorcycle
    33: 18,   # bicycle
}
DATASETS = ("ade20k", "cityscapes", "cocostuff", "cocostuff_oasis")
# cocostuff_oasis: COCO-Stuff label maps as the OASIS loader returns them (gan_core/data/semantic.py: 255 -> 0 =
# dontcare, k -> k + 1), i.e. the maps the workflow exports (oasis_cli export): 0 ignored, 1..182 -> 0..181.


def label_lut(dataset: str) -> torch.Tensor:
    """(256,) int64 look-up table raw label value -> class index, 255 = ignored, -1 = invalid value."""
    lut = torch.full((256,), -1, dtype=torch.long)
    if dataset == "ade20k":
        lut[0] = IGNORE
        lut[1:151] = torch.arange(150)
    elif dataset == "cityscapes":
        for label_id, train_id in CITYSCAPES_LABELID_TO_TRAINID.items():
            lut[label_id] = train_id
    elif dataset == "cocostuff":
        lut[:182] = torch.arange(182)
        lut[255] = IGNORE
    elif dataset == "cocostuff_oasis":
        lut[0] = IGNORE
        lut[1:183] = torch.arange(182)
    else:
        raise ConfigError(f"unknown label convention {dataset!r}; known: {list(DATASETS)}")
    return lut


def map_labels(raw: torch.Tensor, dataset: str, path: str | Path = "<labels>") -> torch.Tensor:
    """Raw label values (any shape, 0..255) -> class indices / 255; invalid values: DataError naming ``path``."""
    if raw.numel() and (int(raw.min()) < 0 or int(raw.max()) > 255):
        raise DataError(path, f"label values must lie in 0..255, got {int(raw.min())}..{int(raw.max())}")
    lut = label_lut(dataset).to(raw.device)
    out = lut[raw.long()]
    bad = out < 0
    if bool(bad.any()):
        raise DataError(path, f"label value {int(raw[bad].flatten()[0])} is not a valid {dataset} label "
                              f"(see gan_core.metrics.external_seg)")
    return out


def pair_files(images_dir: str | Path, labels_dir: str | Path) -> list[tuple[Path, Path]]:
    """(generated image, label map) pairs matched by stem: every label PNG needs ``images/<stem>.png``."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for d, what in ((images_dir, "generated-image"), (labels_dir, "label-map")):
        if not d.is_dir():
            raise DataError(d, f"{what} folder does not exist")
    labels = sorted(p for p in labels_dir.iterdir() if p.suffix.lower() == ".png")
    if not labels:
        raise DataError(labels_dir, "no label maps (.png) found")
    pairs = []
    for lab in labels:
        img = images_dir / f"{lab.stem}.png"
        if not img.is_file():
            raise DataError(img, f"generated image for label map {lab.name} does not exist")
        pairs.append((img, lab))
    return pairs


def read_labels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Raw label values (H, W) int64, nearest-resized to ``size`` = (H, W) when needed."""
    from ..data.semantic import read_label_map

    arr = read_label_map(path, 256)
    if arr.shape != tuple(size):
        img = Image.fromarray(arr.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST)
        arr = np.asarray(img).astype(np.int64)
    return arr


# ------------------------------------------------------------------------------------ prediction
def normalise(images: torch.Tensor, p: EvalProtocol) -> torch.Tensor:
    """(B, 3, H, W) RGB float in 0..255 -> the network input of protocol ``p``."""
    x = images.flip(1) if p.bgr else images
    mean = torch.tensor(p.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(p.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * p.scale - mean) / std


def rescale(images: torch.Tensor, s: float, p: EvalProtocol) -> torch.Tensor:
    """The 0..255 images at ``int(H*s) x int(W*s)`` (fyu/drn: ``int(w * s), int(h * s)``)."""
    h, w = images.shape[-2:]
    size = (max(1, int(h * s)), max(1, int(w * s)))
    if size == (h, w):
        return images
    out = F.interpolate(images, size=size, mode=p.rescale_mode, align_corners=False, antialias=True)
    return out.round().clamp(0, 255) if p.quantize_rescaled else out


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, p: EvalProtocol, scales: Sequence[float] | None = None) -> torch.Tensor:
    """(B, H, W) int64 class map of 0..255 RGB images (B, 3, H, W) under protocol ``p``."""
    size = tuple(images.shape[-2:])
    fused = None
    for s in (tuple(scales) if scales is not None else p.scales):
        logits = model(normalise(rescale(images, float(s), p), p))
        if logits.dim() != 4 or logits.shape[1] != p.num_classes:
            raise ValueError(f"segmenter returned shape {tuple(logits.shape)}, expected (B, {p.num_classes}, h, w)")
        if p.fusion == "sum_log_softmax":   # fyu/drn test_ms: log-softmax first, then bilinear resize
            term = resize_logits(F.log_softmax(logits.float(), dim=1), size, antialias_shrink=True)
        elif p.fusion == "mean_softmax":    # CSAILVision: logits resized to segSize, then softmax
            term = F.softmax(resize_logits(logits.float(), size, antialias_shrink=True), dim=1)
        else:
            raise ConfigError(f"unknown fusion {p.fusion!r} (mean_softmax | sum_log_softmax)")
        fused = term if fused is None else fused + term
    return fused.argmax(1)


@dataclass
class ExternalSegConfig:
    batch_size: int = 4                       # images per forward pass (our choice; no effect on the result)
    scales: tuple[float, ...] | None = None   # None: the protocol's scales (registry.py)
    label_convention: str | None = None       # None: the protocol's dataset (raw dataset files); DATASETS key


def class_frequencies(labels_dir: str | Path, convention: str, num_classes: int) -> np.ndarray:
    """Pixel count of every class over a folder of label PNGs (the REAL training maps; Tables 4.4 / 4.7 rank
    the classes by it), mapped with ``convention`` as the evaluated maps are."""
    from ..data.semantic import read_label_map
    from .segmentation import label_pixel_counts

    folder = Path(labels_dir)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png") if folder.is_dir() else []
    if not files:
        raise DataError(folder, "no training label maps (.png) for the class frequencies")
    counts = np.zeros(num_classes, np.int64)
    for f in files:
        mapped = map_labels(torch.from_numpy(read_label_map(f, 256)), convention, f)
        counts += label_pixel_counts(mapped, num_classes, IGNORE)
    return counts


def _batches(pairs: list[tuple[Path, Path]], batch_size: int) -> Iterator[tuple[list[tuple[Path, Path]], np.ndarray]]:
    """Consecutive pairs whose images share one size, with the stacked uint8 images (B, H, W, 3)."""
    chunk: list[tuple[Path, Path]] = []
    imgs: list[np.ndarray] = []
    for pair in pairs:
        img = read_image(pair[0])
        if chunk and (len(chunk) == batch_size or img.shape != imgs[0].shape):
            yield chunk, np.stack(imgs)
            chunk, imgs = [], []
        chunk.append(pair)
        imgs.append(img)
    if chunk:
        yield chunk, np.stack(imgs)


def evaluate_pairs(model: nn.Module, protocol: EvalProtocol, pairs: list[tuple[Path, Path]],
                   cfg: ExternalSegConfig | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Segment every generated image and accumulate the confusion matrix against its label map."""
    cfg = cfg or ExternalSegConfig()
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {cfg.batch_size}")
    device = torch.device(device)
    model = model.to(device).eval()
    acc = ConfusionAccumulator(protocol.num_classes, IGNORE, device=device)
    sizes: set[tuple[int, int]] = set()
    for chunk, imgs in _batches(pairs, cfg.batch_size):
        size = imgs.shape[1:3]
        sizes.add((int(size[0]), int(size[1])))
        x = torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).float()
        pred = predict(model, x, protocol, cfg.scales)
        target = torch.stack([map_labels(torch.from_numpy(read_labels(lab, size)),
                                         cfg.label_convention or protocol.dataset, lab)
                              for _, lab in chunk]).to(device)
        acc.update(pred, target)
    summary = summarise(acc.matrix)
    return {**summary, "n_images": len(pairs), "image_sizes": sorted(sizes), "confusion_matrix": acc.numpy().tolist()}


def evaluate_folders(model: nn.Module, protocol: EvalProtocol, images_dir: str | Path, labels_dir: str | Path,
                     cfg: ExternalSegConfig | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """:func:`evaluate_pairs` over ``labels_dir/*.png`` and the generated ``images_dir/<stem>.png``."""
    return evaluate_pairs(model, protocol, pair_files(images_dir, labels_dir), cfg, device)


__all__ = ["CITYSCAPES_LABELID_TO_TRAINID", "DATASETS", "ExternalSegConfig", "evaluate_folders", "evaluate_pairs",
           "label_lut", "map_labels", "pair_files", "predict"]
