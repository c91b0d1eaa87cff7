"""External pre-trained segmenters for the mIoU of thesis Chapter 4 (thesis l.1123): UperNet101
(ADE20K), DRN-D-105 (Cityscapes), DeepLabV2-MSC (COCO-Stuff). Definitions written for this project
with the parameter names of the official released checkpoints; see registry.py."""
from .registry import (SEGMENTER_NAMES, SEGMENTERS, EvalProtocol, SegmenterSpec, build_segmenter, get_spec,
                       load_segmenter)

__all__ = ["SEGMENTER_NAMES", "SEGMENTERS", "EvalProtocol", "SegmenterSpec", "build_segmenter", "get_spec",
           "load_segmenter"]
