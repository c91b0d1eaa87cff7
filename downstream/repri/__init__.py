"""RePRI few-shot segmentation on COCO-20i (Boudiaf et al. 2021; thesis Sec. 6.3.4, l.1841, Table 6.6).

Inference written anew, weight-compatible with the official per-fold PSPNet checkpoints (reference notes
downstream-protocols §3): :mod:`.pspnet` (feature extractor), :mod:`.classifier` (transductive RePRI
classifier), :mod:`.episodes` (COCO-20i folds and episode sampling, support pool, synthetic supports),
:mod:`.evaluate` (runs, per-class IoU, mIoU). Command line: ``python -m downstream.repri_cli``.
"""
