"""Command line of the DeepLab-V3 + ResNeSt-50 downstream system (thesis l.1147, l.1255; Tables 4.6, 4.7).

    python -m downstream.deeplab_cli train --images DIR --labels DIR [--synthetic DIR] --num-classes K
        [--ignore 255] --out DIR [--params JSON] [--seed S] [--device auto]
        [--encoder-weights auto|none|PATH] [--resources DIR]
    python -m downstream.deeplab_cli evaluate --checkpoint PATH --images DIR --labels DIR --num-classes K
        [--ignore 255] --out JSON [--device auto] [--groups ade20k|cityscapes|a-b,... --freq-labels DIR]

``--params`` is a JSON object of DeepLabConfig overrides (or a .json file). ``synthetic_counterparts``
defaults to "a --synthetic folder was given"; a contradiction is an error. ``--encoder-weights auto`` loads
the manifest entry resnest50_encoding (under ``--resources``) when ``pretrained_backbone`` is true.
"""
from __future__ import annotations

import argparse
import json
import sys

from gan_core.errors import ConfigError
from gan_core.resources import require
from gan_core.utils.atomic import write_json
from gan_core.utils.dataclass_config import from_dict

from .cli_common import parse_params, resolve_device, run_cli
from .deeplab.config import DeepLabConfig


def train_config(args: argparse.Namespace) -> DeepLabConfig:
    params = parse_params(args.params)
    given = args.synthetic not in (None, "", "none")
    if "synthetic_counterparts" not in params:
        params["synthetic_counterparts"] = given
    elif bool(params["synthetic_counterparts"]) != given:
        raise ConfigError(f"params.synthetic_counterparts={params['synthetic_counterparts']} contradicts "
                          f"--synthetic {args.synthetic}")
    if args.ignore is not None:
        if "ignore_index" in params and int(params["ignore_index"]) != args.ignore:
            raise ConfigError(f"params.ignore_index={params['ignore_index']} contradicts --ignore {args.ignore}")
        params["ignore_index"] = args.ignore
    return from_dict(DeepLabConfig, params, where="--params")


def cmd_train(args: argparse.Namespace) -> None:
    from .deeplab.train import train_deeplab

    cfg = train_config(args)
    weights = None
    if args.encoder_weights == "auto":
        weights = require("resnest50_encoding", args.resources) if cfg.pretrained_backbone else None
    elif args.encoder_weights != "none":
        weights = args.encoder_weights
    if weights is not None and not cfg.pretrained_backbone:
        raise ConfigError("--encoder-weights given but params.pretrained_backbone is false")
    if weights is None and cfg.pretrained_backbone:
        raise ConfigError("pretrained_backbone is true but --encoder-weights is none")
    path = train_deeplab(args.images, args.labels, args.synthetic if cfg.synthetic_counterparts else None,
                         args.num_classes, args.out, cfg, seed=args.seed, device=resolve_device(args.device),
                         encoder_weights=weights)
    print(path)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .deeplab.evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(args.checkpoint, args.images, args.labels, args.num_classes, args.ignore,
                              resolve_device(args.device), args.groups or None, args.freq_labels or None)
    res["checkpoint"] = str(args.checkpoint)
    write_json(args.out, res)
    print(json.dumps({"miou_percent": res["miou_percent"], "pixel_accuracy": res["pixel_accuracy"]}))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m downstream.deeplab_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train DeepLab-V3 (resumable), optionally with synthetic counterparts")
    t.add_argument("--images", required=True)
    t.add_argument("--labels", required=True, help="label PNGs named like the images")
    t.add_argument("--synthetic", default="none", help="synthetic images named like the label maps, or 'none'")
    t.add_argument("--num-classes", type=int, required=True)
    t.add_argument("--ignore", type=int, default=None, help="ignore index (default: params / 255)")
    t.add_argument("--out", required=True)
    t.add_argument("--params", default="{}")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--encoder-weights", default="auto", help="auto (manifest resnest50_encoding), none, or a path")
    t.add_argument("--resources", default="resources")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="mIoU of a trained model on a validation folder")
    e.add_argument("--checkpoint", required=True, help="model.pt (or the loop's checkpoint.pt)")
    e.add_argument("--images", required=True)
    e.add_argument("--labels", required=True)
    e.add_argument("--num-classes", type=int, required=True)
    e.add_argument("--ignore", type=int, default=None)
    e.add_argument("--out", required=True, help="JSON result")
    e.add_argument("--device", default="auto")
    e.add_argument("--groups", default="", help="frequency groups preset or 'a-b,c-d' (Tables 4.4/4.7)")
    e.add_argument("--freq-labels", default="", help="training label folder for the class frequencies")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
