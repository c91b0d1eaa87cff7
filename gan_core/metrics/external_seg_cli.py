"""mIoU of generated images under an external segmenter (thesis l.1123), one JSON written atomically.

    python -m gan_core.metrics.external_seg_cli --segmenter NAME --weights F [F2] --images DIR
        --labels DIR --out JSON [--device auto|cpu|cuda[:N]] [--batch-size 4]
    python -m gan_core.metrics.external_seg_cli --segmenter NAME --random-init --seed S --images DIR
        --labels DIR --out JSON          # tiny preset / tests only: NOT the thesis' segmenter

NAME: ``upernet101_ade20k`` (weights: encoder_epoch_50.pth decoder_epoch_50.pth, in this order),
``drn_d105_cityscapes`` (drn-d-105_ms_cityscapes.pth), ``deeplabv2_cocostuff``
(deeplabv2_resnet101_msc-cocostuff164k-100000.pth). ``--images``: generated PNGs named like the label
maps; ``--labels``: the dataset's label PNGs (raw values; conventions in gan_core.metrics.external_seg).

Output: ``{"metric": "miou", "miou_percent", "pixel_accuracy", "per_class_iou", "segmenter",
"provenance", "details"}``; ``miou_percent`` = 100 x mIoU (the unit of the thesis tables), null when no
class is present. With ``--random-init`` the JSON carries ``"note": "random-init: not the thesis'
segmenter"`` and ``details.random_init = true``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from ..errors import ConfigError
from ..nets.segmenters.registry import SEGMENTER_NAMES, build_segmenter, get_spec, load_segmenter
from ..provenance import provenance
from ..utils.atomic import write_json
from ..utils.cli import run_cli
from ..utils.dataclass_config import to_dict
from ..utils.device import resolve_device
from .external_seg import DATASETS, ExternalSegConfig, class_frequencies, evaluate_folders
from .segmentation import iou_by_frequency_groups

RANDOM_INIT_NOTE = "random-init: not the thesis' segmenter"


def _nan_to_none(v: float) -> float | None:
    return None if v != v else float(v)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = get_spec(args.segmenter)
    if args.random_init:
        if args.weights:
            raise ConfigError("--random-init and --weights exclude each other")
        torch.manual_seed(args.seed)
        model = build_segmenter(args.segmenter)
        weights: list[dict[str, Any]] = []
    else:
        if not args.weights:
            raise ConfigError(f"--weights is required for {args.segmenter} ({' '.join(spec.files)}), "
                              "or --random-init for the tiny preset")
        model = load_segmenter(args.segmenter, args.weights)
        from ..data.fetch import hash_file

        weights = [{"path": str(p), "official_name": f, "sha256": hash_file(p)["sha256"]}
                   for p, f in zip(args.weights, spec.files)]
    cfg = ExternalSegConfig(batch_size=args.batch_size, label_convention=args.label_convention)
    res = evaluate_folders(model, spec.protocol, args.images, args.labels, cfg, resolve_device(args.device))
    params = {"segmenter": spec.name, "protocol": to_dict(spec.protocol), "config": to_dict(cfg),
              "weights": [w["sha256"] for w in weights], "random_init": bool(args.random_init)}
    details = {k: res[k] for k in ("n_images", "image_sizes", "n_classes_present", "num_classes", "confusion_matrix")}
    details.update({"miou": _nan_to_none(res["miou"]), "ignore_index": 255, "dataset_labels": spec.protocol.dataset,
                    "protocol": to_dict(spec.protocol), "source": spec.source, "weights": weights,
                    "random_init": bool(args.random_init), "images": str(args.images), "labels": str(args.labels)})
    out = {
        "metric": "miou",
        "miou_percent": None if res["miou"] != res["miou"] else 100.0 * float(res["miou"]),
        "pixel_accuracy": _nan_to_none(res["pixel_accuracy"]),
        "per_class_iou": res["per_class_iou"],
        "segmenter": spec.name,
        "provenance": provenance(params, seed=args.seed if args.random_init else None),
        "details": details,
    }
    if args.groups:  # Tables 4.4 / 4.7: classes ranked by their pixel frequency in the real training maps
        if not args.freq_labels:
            raise ConfigError("--groups needs --freq-labels (the real training label maps)")
        freq = class_frequencies(args.freq_labels, cfg.label_convention or spec.protocol.dataset,
                                 spec.protocol.num_classes)
        out["frequency_groups"] = iou_by_frequency_groups(res["confusion_matrix"], freq, args.groups)
    if args.random_init:
        out["note"] = RANDOM_INIT_NOTE
    write_json(args.out, out)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.metrics.external_seg_cli",
                                description=__doc__.split("\n")[0])
    p.add_argument("--segmenter", required=True, choices=SEGMENTER_NAMES)
    p.add_argument("--weights", nargs="+", default=None, help="official weight file(s), in the documented order")
    p.add_argument("--images", required=True, help="folder of generated PNGs named like the label maps")
    p.add_argument("--labels", required=True, help="folder of label-map PNGs (raw dataset values)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=ExternalSegConfig.batch_size)
    p.add_argument("--random-init", action="store_true",
                   help="seeded random weights (tiny preset / tests only; recorded in the JSON)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    p.add_argument("--label-convention", dest="label_convention", default=None, choices=DATASETS,
                   help="how --labels are stored (default: the segmenter's dataset files; cocostuff_oasis = the "
                        "OASIS loader's shifted COCO-Stuff maps, as oasis_cli export writes them)")
    p.add_argument("--groups", default="", help="frequency groups: preset (ade20k, cityscapes) or 'a-b,c-d,...'")
    p.add_argument("--freq-labels", dest="freq_labels", default="", help="real training label maps (for --groups)")
    return p


def _command(args: argparse.Namespace) -> int:
    res = run(args)
    print(f"miou_percent = {res['miou_percent']} ({res['segmenter']}"
          f"{', ' + RANDOM_INIT_NOTE if args.random_init else ''}) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    # error_code=None: a ReproError propagates (the tests rely on it), as it always did
    return run_cli(parser, argv, error_code=None)


if __name__ == "__main__":
    sys.exit(main())
