"""The three external evaluation segmenters of thesis Chapter 4 by name, with their weight files and
their evaluation pre-processing (thesis l.1123: "UperNet101 for ADE20K, multi-scale DRN-D-105 for
Cityscapes, and DeepLabV2 for COCO-Stuff"; reference notes baselines.md §4.3-§4.5).

=======================  ==================================  ========================================
name                     weight files (in this order)        manifest entries
=======================  ==================================  ========================================
``upernet101_ade20k``    encoder_epoch_50.pth, decoder_...   upernet101_ade20k_encoder / _decoder
``drn_d105_cityscapes``  drn-d-105_ms_cityscapes.pth         drn_d105_cityscapes (manual)
``deeplabv2_cocostuff``  deeplabv2_resnet101_msc-cocost...   deeplabv2_cocostuff
=======================  ==================================  ========================================

Pre-processing (:class:`EvalProtocol`; the facts and where they come from):

* UperNet101: RGB / 255, ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225)
  (CSAILVision mit_semseg/dataset.py ``img_transform``). Scales: (1.0,) = the generated resolution
  (thesis protocol, OASIS#5); the official eval averages the softmax over short sides 300..600,
  available here as ``scales`` + fusion ``mean_softmax``.
* DRN-D-105: RGB / 255, mean / std of fyu/drn datasets/cityscapes/info.json. Multi-scale as
  ``segment.py test --ms``: scales 1 (the input as is) and 0.5, 0.75, 1.25, 1.5, 1.75 (``test_seg``),
  each rescaled image made from the uint8 image with bicubic resampling (PIL BICUBIC in ``SegListMS``;
  here torch bicubic with antialias, rounded to uint8 values), log-softmax outputs resized bilinearly
  to the input size and summed, then argmax (``test_ms``).
* DeepLabV2: BGR, 0..255 minus the Caffe mean (B, G, R) = (104.008, 116.669, 122.675), no std
  (deeplab-pytorch configs/cocostuff164k.yaml ``IMAGE.MEAN``; libs/datasets/base.py subtracts
  ``mean_bgr`` from the cv2 BGR float image). Multi-scale = the MSC inside the network.

Loading (:func:`load_segmenter`): ``torch.load(weights_only=True)``; a ``module.`` prefix on every key
(nn.DataParallel) is removed and a missing BatchNorm ``num_batches_tracked`` counter (checkpoints
older than PyTorch 0.4.1; it is unused in eval) is filled with 0; everything else must match exactly
(strict), otherwise :class:`~gan_core.errors.DataError` names the file and the first differing keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn

from ...errors import ConfigError, DataError
from .deeplabv2 import DeepLabV2MSC
from .drn import DRNSegD105
from .upernet import UperNet101


@dataclass(frozen=True)
class EvalProtocol:
    """How a segmenter sees an image and how scales are fused (see the module docstring)."""

    dataset: str                                 # label convention: ade20k | cityscapes | cocostuff
    num_classes: int
    mean: tuple[float, float, float]             # in the units after ``scale`` and channel order
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0 / 255.0                   # multiply the 0..255 image by this first
    bgr: bool = False                            # reverse the channels (Caffe models)
    scales: tuple[float, ...] = (1.0,)           # test scales relative to the generated image
    fusion: str = "mean_softmax"                 # mean_softmax | sum_log_softmax
    rescale_mode: str = "bilinear"               # resampling of the uint8 image for scales != 1
    quantize_rescaled: bool = False              # round rescaled images to uint8 values (PIL-like)


@dataclass(frozen=True)
class SegmenterSpec:
    name: str
    build: Callable[[], nn.Module]
    parts: tuple[str, ...]                       # submodule per weight file ("" = whole model)
    files: tuple[str, ...]                       # official file names, same order as ``parts``
    manifest: tuple[str, ...]                    # manifest entries, same order
    protocol: EvalProtocol
    source: str


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# fyu/drn datasets/cityscapes/info.json (mean / std of the Cityscapes training images, RGB in [0, 1]).
DRN_CITYSCAPES_MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
DRN_CITYSCAPES_STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
# deeplab-pytorch configs/cocostuff164k.yaml IMAGE.MEAN (R 122.675, G 116.669, B 104.008), used as BGR.
DEEPLAB_MEAN_BGR = (104.008, 116.669, 122.675)
# fyu/drn segment.py test_seg: scales = [0.5, 0.75, 1.25, 1.5, 1.75] besides the full image.
DRN_MS_SCALES = (1.0, 0.5, 0.75, 1.25, 1.5, 1.75)

SEGMENTERS: dict[str, SegmenterSpec] = {
    "upernet101_ade20k": SegmenterSpec(
        name="upernet101_ade20k", build=UperNet101, parts=("encoder", "decoder"),
        files=("encoder_epoch_50.pth", "decoder_epoch_50.pth"),
        manifest=("upernet101_ade20k_encoder", "upernet101_ade20k_decoder"),
        protocol=EvalProtocol(dataset="ade20k", num_classes=150, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        source="CSAILVision/semantic-segmentation-pytorch @ 8f27c9b, config/ade20k-resnet101-upernet.yaml"),
    "drn_d105_cityscapes": SegmenterSpec(
        name="drn_d105_cityscapes", build=DRNSegD105, parts=("",), files=("drn-d-105_ms_cityscapes.pth",),
        manifest=("drn_d105_cityscapes",),
        protocol=EvalProtocol(dataset="cityscapes", num_classes=19, mean=DRN_CITYSCAPES_MEAN,
                              std=DRN_CITYSCAPES_STD, scales=DRN_MS_SCALES, fusion="sum_log_softmax",
                              rescale_mode="bicubic", quantize_rescaled=True),
        source="fyu/drn @ d75db2e, segment.py DRNSeg + test_ms"),
    "deeplabv2_cocostuff": SegmenterSpec(
        name="deeplabv2_cocostuff", build=DeepLabV2MSC, parts=("",),
        files=("deeplabv2_resnet101_msc-cocostuff164k-100000.pth",), manifest=("deeplabv2_cocostuff",),
        protocol=EvalProtocol(dataset="cocostuff", num_classes=182, mean=DEEPLAB_MEAN_BGR, scale=1.0, bgr=True),
        source="kazuto1011/deeplab-pytorch @ 4219467, hubconf.py deeplabv2_resnet101 + configs/cocostuff164k.yaml"),
}
SEGMENTER_NAMES = tuple(SEGMENTERS)


def get_spec(name: str) -> SegmenterSpec:
    try:
        return SEGMENTERS[name]
    except KeyError:
        raise ConfigError(f"unknown segmenter {name!r}; known: {list(SEGMENTERS)}") from None


def build_segmenter(name: str) -> nn.Module:
    """The network with its own random initialisation, in eval mode."""
    return get_spec(name).build().eval()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DataError(path, "weights file does not exist")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unpickling failure is a bad file
        raise DataError(path, f"cannot be read as a weights-only torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # {'state_dict': ..., 'epoch': ...} training checkpoints
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(path, "expected a state dict (a mapping of parameter names to tensors)")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _fill_bn_counters(sd: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in sd:
            prefix = key[: -len("num_batches_tracked")]
            if prefix + "running_mean" in sd:
                sd[key] = torch.zeros((), dtype=torch.long)


def _check_keys(path: Path, sd: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str) -> None:
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
              for k, v in expected.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    if problems:
        raise DataError(path, f"does not match {what}: " + "; ".join(problems))


def load_segmenter(name: str, weight_paths: Sequence[str | Path]) -> nn.Module:
    """Build ``name`` and load its official weight file(s) strictly; eval mode, on the CPU."""
    spec = get_spec(name)
    paths = [Path(p) for p in weight_paths]
    if len(paths) != len(spec.parts):
        raise ConfigError(f"segmenter {name!r} needs {len(spec.parts)} weight file(s) "
                          f"({', '.join(spec.files)}), got {len(paths)}")
    model = spec.build()
    for part, path in zip(spec.parts, paths):
        module = model.get_submodule(part) if part else model
        expected = module.state_dict()
        sd = _read_state_dict(path)
        _fill_bn_counters(sd, expected)
        what = f"the {name} {part or 'network'} ({spec.source})"
        _check_keys(path, sd, expected, what)
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:  # e.g. dtype problems the key check cannot see
            raise DataError(path, f"cannot be loaded into {what}: {exc}") from exc
    return model.eval()
