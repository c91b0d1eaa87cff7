"""Segmentation-side metrics from the command line; each writes one JSON file atomically.

    python -m gan_core.metrics.seg_cli miou --pred DIR --gt DIR --num-classes K [--ignore 255]
        [--groups ade20k|cityscapes|0-4,5-8,...] [--freq-from DIR | --class-freq JSON] --out JSON
    python -m gan_core.metrics.seg_cli mask-alignment --samples DIR --real-image P --real-mask P --out JSON
        [--params JSON] [--seed S] [--device auto] [--encoder-weights manifest|none|PATH]
        [--resources DIR] [--work-dir DIR]
    python -m gan_core.metrics.seg_cli colour-texture --fake DIR --real DIR --labels DIR --out JSON
        [--params JSON]

Output: ``{"value", "metric", "details", "provenance"}``. ``--params`` is a JSON object or the
path of a JSON file with overrides of the module's config dataclass (unknown keys are an error).

* ``miou``: predictions and ground truths are label PNGs paired by file stem (every GT needs a
  prediction). ``--groups`` adds the per-frequency-group mIoU of thesis Tables 4.4 / 4.7; the class
  pixel frequencies are counted over the label maps in ``--freq-from`` (the training set, as in the
  thesis) or read from ``--class-freq`` (a JSON list of K numbers).
* ``mask-alignment``: ``samples.json`` as written by ``gan_core.sample.generate``; the UNet work
  folder (checkpoint, resumable) defaults to ``<out>.work/``. ``--encoder-weights manifest`` (default)
  uses the ``tv_resnet18`` file under ``--resources`` and fails if it is missing; ``none`` trains a
  randomly initialised encoder (labelled, not thesis numbers).
* ``colour-texture``: for every label map ``labels/X.png`` the real image ``real/X.{png,jpg,jpeg}``
  and the generated image ``fake/X.{png,jpg,jpeg}``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..provenance import provenance
from ..utils.atomic import write_json
from ..utils.cli import run_cli
from ..utils.dataclass_config import from_dict, to_dict
from ..utils.images import check_pair, read_image, read_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# ----------------------------------------------------------------------------------- helpers
def load_params(text: str | None) -> dict[str, Any]:
    """A JSON object given inline or as a file path."""
    if not text:
        return {}
    src = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise DataError(path, "params file does not exist (pass a JSON object or a JSON file)")
        src = path.read_text()
    try:
        obj = json.loads(src)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params {text!r}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ConfigError(f"--params {text!r}: expected a JSON object")
    return obj


def _pngs(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, f"{what} folder does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DataError(folder, f"no {what} PNG files found")
    return files


def _match(folder: Path, stem: str, what: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file():
                return cand
    raise DataError(folder / f"{stem}.png", f"{what} for label map {stem!r} does not exist")


def _emit(out: str | Path, value: float, metric: str, details: dict[str, Any], params: dict[str, Any],
          seed: int | None = None) -> dict[str, Any]:
    result = {"value": None if value != value else float(value), "metric": metric, "details": details,
              "provenance": provenance(params, seed=seed)}
    write_json(out, result)
    return result


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------- commands
def cmd_miou(args: argparse.Namespace) -> dict[str, Any]:
    from .segmentation import ConfusionAccumulator, iou_by_frequency_groups, label_pixel_counts, summarise

    k, ignore = args.num_classes, (None if args.ignore < 0 else args.ignore)
    acc = ConfusionAccumulator(k, ignore)
    gts = _pngs(Path(args.gt), "ground-truth")
    for gt_path in gts:
        pred_path = Path(args.pred) / gt_path.name
        if not pred_path.is_file():
            raise DataError(pred_path, f"prediction for ground truth {gt_path.name} does not exist")
        gt, pred = read_mask(gt_path), read_mask(pred_path)
        if gt.shape != pred.shape:
            raise DataError(pred_path, f"size {pred.shape[1]}x{pred.shape[0]} differs from {gt_path} "
                                       f"({gt.shape[1]}x{gt.shape[0]})")
        try:
            acc.update(pred, gt)
        except ValueError as exc:
            raise DataError(pred_path, f"with {gt_path.name}: {exc}") from exc
    details = summarise(acc.matrix)
    details["n_images"] = len(gts)
    details["ignore_index"] = ignore
    details["confusion_matrix"] = acc.numpy().tolist()
    if args.groups:
        if args.class_freq:
            freq_path = Path(args.class_freq)
            if not freq_path.is_file():
                raise DataError(freq_path, "class-frequency file does not exist")
            try:
                freq = json.loads(freq_path.read_text())
            except json.JSONDecodeError as exc:
                raise DataError(freq_path, f"not valid JSON ({exc})") from exc
            if not isinstance(freq, list) or len(freq) != k:
                raise DataError(args.class_freq, f"expected a JSON list of {k} class frequencies")
            source = str(args.class_freq)
        elif args.freq_from:
            counts = np.zeros(k, dtype=np.int64)
            for p in _pngs(Path(args.freq_from), "label"):
                try:
                    counts += label_pixel_counts(read_mask(p), k, ignore)
                except ValueError as exc:
                    raise DataError(p, str(exc)) from exc
            freq, source = counts.tolist(), str(args.freq_from)
        else:
            raise ConfigError("--groups needs --freq-from DIR (training labels) or --class-freq JSON")
        try:
            grouped = iou_by_frequency_groups(acc.matrix, freq, args.groups)
        except ValueError as exc:
            raise ConfigError(f"--groups {args.groups!r}: {exc}") from exc
        details["frequency_groups"] = {**grouped, "frequency_source": source}
    params = {"num_classes": k, "ignore": ignore, "groups": args.groups}
    return _emit(args.out, details["miou"], "miou", _nan_to_none(details), params)


def _load_fake_masks(pairs: list[tuple[Path, Path]], size: tuple[int, int]) -> torch.Tensor:
    masks = []
    for img_path, mask_path in pairs:
        m = read_mask(mask_path)
        if m.shape != size:
            raise DataError(mask_path, f"mask size {m.shape[1]}x{m.shape[0]} differs from image {img_path.name} "
                                       f"({size[1]}x{size[0]})")
        masks.append(m)
    return torch.from_numpy(np.stack(masks))


def cmd_mask_alignment(args: argparse.Namespace) -> dict[str, Any]:
    from ..resources import require
    from .mask_alignment import MaskAlignmentConfig, prepare_labels, run_mask_alignment
    from .sifid_cli import list_samples, load_samples, resolve_device, to_unit_range

    params = load_params(args.params)
    cfg = from_dict(MaskAlignmentConfig, params, "mask-alignment --params")
    if args.encoder_weights == "none":
        weights = None
    elif args.encoder_weights == "manifest":
        weights = require("tv_resnet18", args.resources)
    else:
        weights = Path(args.encoder_weights)
        if not weights.is_file():
            raise DataError(weights, "encoder weights file does not exist")
    samples_dir = Path(args.samples)
    pairs = list_samples(samples_dir)
    fakes = load_samples(pairs)
    fake_masks = _load_fake_masks(pairs, tuple(fakes.shape[-2:]))
    real_img = read_image(args.real_image)
    real_mask = read_mask(args.real_mask)
    check_pair(args.real_image, real_img, args.real_mask, real_mask)
    real_t, real_m = to_unit_range([real_img])[0], torch.from_numpy(real_mask)
    try:
        prepare_labels(real_m, fake_masks, cfg)
    except ValueError as exc:  # name the offending file
        bad = [p for (_, p), m in zip(pairs, fake_masks) if _labels_exceed(m, real_m, cfg)]
        raise DataError(bad[0] if bad else Path(args.real_mask), str(exc)) from exc
    work_dir = Path(args.work_dir) if args.work_dir else Path(str(args.out) + ".work")
    res = run_mask_alignment(fakes, fake_masks, real_t, real_m, work_dir, cfg, seed=args.seed,
                             device=resolve_device(args.device), encoder_weights=weights, progress=args.progress)
    details = {**res, "official_value": res["thresholded_iou"], "config": to_dict(cfg),
               "samples": str(samples_dir), "real_image": str(args.real_image), "real_mask": str(args.real_mask),
               "note": "value = thresholded IoU of the official OSMIS code; details.miou = plain mIoU"}
    return _emit(args.out, res["thresholded_iou"], "osmis_mask_alignment_thresholded_iou", _nan_to_none(details),
                 {"config": to_dict(cfg), "weights": res["weights_label"]}, seed=args.seed)


def _labels_exceed(fake: torch.Tensor, real: torch.Tensor, cfg: Any) -> bool:
    valid = real[real != cfg.ignore_index]
    k = int(valid.max()) + 1 if valid.numel() else 0
    fv = fake[fake != cfg.ignore_index]
    return bool(fv.numel()) and int(fv.max()) >= k


def _labels_for(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if image.shape[:2] == labels.shape:
        return labels
    t = torch.from_numpy(labels)[None, None].float()
    return torch.nn.functional.interpolate(t, size=image.shape[:2], mode="nearest")[0, 0].long().numpy()


def cmd_colour_texture(args: argparse.Namespace) -> dict[str, Any]:
    from .colour_texture import ClassHistograms, ColourTextureConfig, compare

    params = load_params(args.params)
    cfg = from_dict(ColourTextureConfig, params, "colour-texture --params")
    real_h, fake_h = ClassHistograms(cfg), ClassHistograms(cfg)
    label_files = _pngs(Path(args.labels), "label")
    for lab_path in label_files:
        labels = read_mask(lab_path)
        for folder, hist, what in ((Path(args.real), real_h, "real image"), (Path(args.fake), fake_h, "generated image")):
            img_path = _match(folder, lab_path.stem, what)
            img = read_image(img_path)
            hist.add(img, _labels_for(img, labels))
    res = compare(real_h, fake_h)
    res["n_images"] = len(label_files)
    res["config"] = to_dict(cfg)
    res["colour_emd_definition"] = "sum over L,a,b of the 1-D EMD between per-class normalised histograms"
    details = _nan_to_none(res)
    return _emit(args.out, res["colour_emd"], "oasis_colour_emd_lab", details, {"config": to_dict(cfg)})


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core.metrics.seg_cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("miou", help="dataset-level mIoU of predicted label maps")
    m.add_argument("--pred", required=True, help="folder of predicted label PNGs")
    m.add_argument("--gt", required=True, help="folder of ground-truth label PNGs (same file names)")
    m.add_argument("--num-classes", type=int, required=True)
    m.add_argument("--ignore", type=int, default=255, help="ignored ground-truth label (-1: none)")
    m.add_argument("--groups", default=None, help="frequency groups: ade20k | cityscapes | 'a-b,c-d,...' (ranks)")
    m.add_argument("--freq-from", default=None, help="label folder to count class pixel frequencies (training set)")
    m.add_argument("--class-freq", default=None, help="JSON list of K class pixel frequencies")
    m.add_argument("--out", required=True)

    a = sub.add_parser("mask-alignment", help="OSMIS UNet mask-alignment score (thesis l.1758-1760)")
    a.add_argument("--samples", required=True, help="folder with samples.json, images/, masks/")
    a.add_argument("--real-image", required=True)
    a.add_argument("--real-mask", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--params", default=None, help="MaskAlignmentConfig overrides: JSON object or file")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    a.add_argument("--encoder-weights", default="manifest",
                   help="manifest (tv_resnet18 under --resources) | none (random init, labelled) | PATH")
    a.add_argument("--resources", default="resources", help="resources folder of the weights manifest")
    a.add_argument("--work-dir", default=None, help="UNet checkpoint folder (default: <out>.work)")
    a.add_argument("--progress", action="store_true", help="show a progress bar")

    c = sub.add_parser("colour-texture", help="per-class LAB-histogram EMD and LBP chi-square (OASIS Fig. 4.7)")
    c.add_argument("--fake", required=True, help="generated images, named like the label maps")
    c.add_argument("--real", required=True, help="real images, named like the label maps")
    c.add_argument("--labels", required=True, help="label maps (PNG) shared by real and generated images")
    c.add_argument("--out", required=True)
    c.add_argument("--params", default=None, help="ColourTextureConfig overrides: JSON object or file")
    return parser


COMMANDS = {"miou": cmd_miou, "mask-alignment": cmd_mask_alignment, "colour-texture": cmd_colour_texture}


def _command(args: argparse.Namespace) -> int:
    res = COMMANDS[args.command](args)
    print(f"{res['metric']} = {res['value']} -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    # error_code=None: a ReproError propagates (the tests rely on it), as it always did
    return run_cli(parser, argv, error_code=None)


if __name__ == "__main__":
    sys.exit(main())
