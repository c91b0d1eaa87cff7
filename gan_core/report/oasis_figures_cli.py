"""Command line of the OASIS editing figures and the D-as-segmenter score (``report/oasis_figures.py``).

    python -m gan_core.report.oasis_figures_cli noise --run RUN --dataroot ROOT --out PNG [--split validation]
        [--n-maps 2] [--indices 0,5] [--n-samples 4] [--region-class auto|C] [--local-mode image|pixel]
        [--seed 0] [--scale 1] [--device auto]                                              (Fig. 4.10)
    python -m gan_core.report.oasis_figures_cli interpolate --run RUN --dataroot ROOT --out PNG [--steps 5] ...
                                                                                             (Fig. 4.11)
    python -m gan_core.report.oasis_figures_cli recreate --run RUN --dataroot ROOT --out PNG [--n-maps 2]
        [--n-recreations 3] ...                                                              (Fig. 4.12)
    python -m gan_core.report.oasis_figures_cli d-miou --run RUN --dataroot ROOT --out JSON [--split validation]
        [--keep-dontcare] [--batch 8]                                                        (thesis l.1251)
    python -m gan_core.report.oasis_figures_cli colour-texture --run LABEL=RUN [--run LABEL=RUN ...]
        [--result LABEL=JSON ...] --dataroot ROOT --out PNG [--max-images N] [--params JSON]  (Fig. 4.7)

``RUN`` is an ``oasis_cli train`` folder: ``config.json`` + ``generator_ema.pt`` (all commands but d-miou) and,
for ``recreate`` / ``d-miou``, the discriminator: ``discriminator.pt`` if present, else ``checkpoint.pt``.
The dataset (and its layout) is the one recorded in the run's config (``oasis_cli.dataset_for``). Every PNG is
written atomically with a JSON sidecar (same name, ``.json``) holding the parameters and provenance; d-miou
writes one JSON ``{"value", "metric", "details", "provenance"}``. ``--result`` takes the JSON of
``seg_cli colour-texture`` instead of computing a run's distances here.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from ..errors import ConfigError
from ..metrics.colour_texture import ColourTextureConfig
from ..metrics.d_segmenter import SegmenterConfig
from ..sample.oasis_noise import NoiseEditConfig
from ..utils.cli import run_cli
from ..utils.dataclass_config import from_dict
from ..utils.device import resolve_device
from . import oasis_figures as of

log = logging.getLogger("gan_core.report.oasis_figures_cli")


def _pairs(items: Sequence[str] | None, flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ConfigError(f"{flag} {item!r}: expected LABEL=PATH")
        out.append((label, path))
    return out


def _indices(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"--indices {text!r}: expected comma-separated integers") from exc


def _region(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError as exc:
        raise ConfigError(f"--region-class {text!r}: expected 'auto' or a class index") from exc


def figure_config(args: argparse.Namespace) -> of.FigureConfig:
    noise = NoiseEditConfig(n_samples=getattr(args, "n_samples", 4), steps=getattr(args, "steps", 5),
                            seed=args.seed, local_mode=getattr(args, "local_mode", "image"))
    return of.FigureConfig(n_maps=args.n_maps, indices=_indices(args.indices),
                           region_class=_region(getattr(args, "region_class", "auto")),
                           n_recreations=getattr(args, "n_recreations", 3), scale=args.scale, noise=noise)


def cmd_figure(args: argparse.Namespace) -> int:
    fn = {"noise": of.noise_figure, "interpolate": of.interpolation_figure, "recreate": of.recreation_figure}
    h, w = fn[args.command](args.run, args.dataroot, args.out, args.split, figure_config(args),
                            str(resolve_device(args.device)))
    print(f"{args.command}: {args.out} ({w}x{h} px)")
    return 0


def cmd_d_miou(args: argparse.Namespace) -> int:
    seg = SegmenterConfig(exclude_dontcare=not args.keep_dontcare, batch=args.batch)
    res = of.d_miou(args.run, args.dataroot, args.out, args.split, seg, str(resolve_device(args.device)))
    print(f"{res['metric']} = {res['value']} -> {args.out}")
    return 0


def cmd_colour_texture(args: argparse.Namespace) -> int:
    from ..metrics.seg_cli import load_params

    ct = from_dict(ColourTextureConfig, load_params(args.params), "colour-texture --params")
    res = of.colour_texture_figure(_pairs(args.run, "--run"), args.dataroot, args.out, args.split, args.seed,
                                   args.max_images, ct, str(resolve_device(args.device)),
                                   _pairs(args.result, "--result"), preset=args.preset)
    for b in res["bars"]:
        print(f"{b['label']}: colour EMD {b['colour_emd']}, texture chi2 {b['texture_chi2']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.report.oasis_figures_cli", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataroot", required=False, default=None, help="dataset root (ADE20K layout)")
    common.add_argument("--split", default="validation")
    common.add_argument("--out", required=True)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    fig = argparse.ArgumentParser(add_help=False, parents=[common])
    fig.add_argument("--run", required=True, help="oasis_cli train run folder")
    fig.add_argument("--n-maps", dest="n_maps", type=int, default=2, help="label maps (first ones of the split)")
    fig.add_argument("--indices", default=None, help="comma-separated split indices instead of the first n-maps")
    fig.add_argument("--scale", type=int, default=1, help="nearest upsampling of each panel")
    n = sub.add_parser("noise", parents=[fig], help="Fig. 4.10: global and local 3D-noise resampling")
    n.add_argument("--n-samples", dest="n_samples", type=int, default=4)
    n.add_argument("--region-class", dest="region_class", default="auto", help="'auto' (largest class) or an id")
    n.add_argument("--local-mode", dest="local_mode", choices=("image", "pixel"), default="image")
    i = sub.add_parser("interpolate", parents=[fig], help="Fig. 4.11: global and local linear interpolation")
    i.add_argument("--steps", type=int, default=5)
    i.add_argument("--region-class", dest="region_class", default="auto")
    r = sub.add_parser("recreate", parents=[fig], help="Fig. 4.12: recreations from the D's segmentation")
    r.add_argument("--n-recreations", dest="n_recreations", type=int, default=3)
    for s in (n, i, r):
        s.set_defaults(func=cmd_figure)
    d = sub.add_parser("d-miou", parents=[common], help="mIoU of the discriminator as a segmenter (l.1251)")
    d.add_argument("--run", required=True)
    d.add_argument("--batch", type=int, default=8)
    d.add_argument("--keep-dontcare", dest="keep_dontcare", action="store_true",
                   help="let label 0 (dontcare) be predicted and scored (default: excluded, 150-class ADE20K)")
    d.set_defaults(func=cmd_d_miou)
    c = sub.add_parser("colour-texture", parents=[common], help="Fig. 4.7: colour / texture histogram distances")
    c.add_argument("--run", action="append", default=[], help="LABEL=RUN (repeat); computed here")
    c.add_argument("--result", action="append", default=[], help="LABEL=JSON of seg_cli colour-texture (repeat)")
    c.add_argument("--max-images", dest="max_images", type=int, default=None, help="first N label maps only")
    c.add_argument("--params", default=None, help="ColourTextureConfig overrides: JSON object or file")
    c.add_argument("--preset", default=None, help="workflow preset; 'tiny' labels the figure as not thesis numbers")
    c.set_defaults(func=cmd_colour_texture)
    return p


def _check_dataroot(args: argparse.Namespace) -> None:
    if args.command != "colour-texture" and not args.dataroot:
        raise ConfigError(f"{args.command}: --dataroot is required")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv, validate=_check_dataroot)


if __name__ == "__main__":
    sys.exit(main())
