"""Command line of the STM downstream system.

    python -m downstream.stm_cli train-tiny --davis-root DIR --split-file FILE --out DIR --params JSON --seed S --device D
    python -m downstream.stm_cli run --davis-root DIR --sequence NAME --mode {2016,2017} --weights PATH
                                     --synthetic-manifest PATH|none --out DIR --params JSON --seed S --device D

``--params`` is a JSON object of STMConfig overrides, or the path of a .json file holding one.
``run``: the architecture is read from the weights file (official ``STM_weights.pth`` or ``stm_tiny.pth`` from
``train-tiny``); when the params do not set ``synthetic``, it is true iff a manifest is given. Writes
``OUT/predictions/NNNNN.png`` (object ids, DAVIS palette) and ``OUT/done.json``; evaluate them with
``python -m downstream.osvos_cli evaluate``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from gan_core.errors import ConfigError, MissingResourceError
from gan_core.provenance import provenance
from gan_core.utils.atomic import write_json
from gan_core.utils.dataclass_config import from_dict, to_dict

from .osvos.data import read_sequence_list
from .cli_common import (add_run_arguments, add_train_split_arguments, parse_params, resolve_device, run_cli,
                         synthetic_settings)
from .stm.config import STMConfig

log = logging.getLogger("downstream.stm_cli")
WEIGHTS_RESOURCE = "stm_weights"


def missing_weights(path: Path) -> MissingResourceError:
    """The error for an absent weights file, naming the manifest's fetch target (fetch_stm_weights)."""
    from gan_core.resources import load_manifest

    entry = load_manifest()[WEIGHTS_RESOURCE]
    return MissingResourceError("STM weights", path, entry.fetch_target,
                                f"{entry.how_to_get()} (the tiny preset uses stm_tiny.pth from 'train-tiny').")


def cmd_train_tiny(args: argparse.Namespace) -> None:
    from .stm.train_tiny import train_tiny

    cfg = from_dict(STMConfig, parse_params(args.params), where="--params")
    path = train_tiny(args.davis_root, read_sequence_list(args.split_file), args.out, cfg, seed=args.seed,
                      device=resolve_device(args.device))
    print(path)


def cmd_run(args: argparse.Namespace) -> None:
    from .stm.model import load_stm_weights
    from .stm.sequence import segment_sequence

    params, manifest = synthetic_settings(args.params, args.synthetic_manifest)
    cfg = from_dict(STMConfig, params, where="--params")
    weights = Path(args.weights)
    if not weights.is_file():
        raise missing_weights(weights)
    device = resolve_device(args.device)
    model = load_stm_weights(weights).to(device)
    if args.sequences:
        # Several sequences in one job (the model is loaded once): OUT/<sequence>/{predictions,done.json}.
        # Each sequence's synthetic pool comes from --synthetic-manifest with {sequence} substituted.
        for seq in [s for s in args.sequences.split(",") if s]:
            seq_manifest = None if manifest is None else Path(str(manifest).replace("{sequence}", seq))
            meta = segment_sequence(model, args.davis_root, seq, args.mode, seq_manifest, Path(args.out) / seq,
                                    cfg, seed=args.seed, device=device, weights=weights)
            print(json.dumps({k: meta[k] for k in ("sequence", "mode", "objects", "n_frames", "synthetic_used")}))
        write_json(Path(args.out) / "done.json", {"sequences": args.sequences.split(","), "mode": args.mode,
                                                  "weights": str(weights),
                                                  "provenance": provenance(to_dict(cfg), seed=args.seed)})
        return
    if not args.sequence:
        raise ConfigError("give --sequence or --sequences")
    meta = segment_sequence(model, args.davis_root, args.sequence, args.mode, manifest, args.out, cfg,
                            seed=args.seed, device=device, weights=weights)
    print(json.dumps({k: meta[k] for k in ("sequence", "mode", "objects", "n_frames", "synthetic_used")}))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m downstream.stm_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train-tiny", help="train a tiny STM from scratch on a DAVIS-format train split (resumable)")
    add_train_split_arguments(t)
    add_run_arguments(t)
    t.set_defaults(func=cmd_train_tiny)

    r = sub.add_parser("run", help="segment one sequence with STM (official test protocol + synthetic memory)")
    r.add_argument("--davis-root", required=True)
    r.add_argument("--sequence", default="", help="one sequence; output in --out")
    r.add_argument("--sequences", default="",
                   help="comma-separated sequences in one job; output in --out/<sequence>/; a {sequence} "
                        "placeholder in --synthetic-manifest is replaced by each name")
    r.add_argument("--mode", required=True, choices=["2016", "2017"])
    r.add_argument("--weights", required=True, help="official STM_weights.pth or stm_tiny.pth")
    r.add_argument("--synthetic-manifest", default="none", help="filtering manifest.json with 'kept', or 'none'")
    add_run_arguments(r)  # --seed draws the synthetic pairs
    r.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
