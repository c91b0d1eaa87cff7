"""Command line of the OSVOS downstream system and the DAVIS J&F evaluator.

    python -m downstream.osvos_cli parent   --davis-root DIR --split-file FILE --out DIR --params JSON --seed S --device D
    python -m downstream.osvos_cli finetune --davis-root DIR --sequence NAME --mode {2016,2017} --parent PATH
                                            --synthetic-manifest PATH|none --out DIR --params JSON --seed S --device D
    python -m downstream.osvos_cli evaluate --davis-root DIR --results DIR --sequences a,b,c --mode {2016,2017} --out CSV

``--params`` is a JSON object of OSVOSConfig overrides, or the path of a .json file holding one.
``finetune``: when the params do not set ``synthetic``, it is true iff a manifest is given.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

from gan_core.provenance import provenance
from gan_core.utils.atomic import atomic_path, write_json
from gan_core.utils.dataclass_config import from_dict

from . import davis_eval
from .osvos.config import OSVOSConfig
from .cli_common import (add_run_arguments, add_train_split_arguments, parse_params, resolve_device, run_cli,
                         synthetic_settings)
from .osvos.data import read_sequence_list

log = logging.getLogger("downstream.osvos_cli")


def cmd_parent(args: argparse.Namespace) -> None:
    from .osvos.parent import train_parent

    cfg = from_dict(OSVOSConfig, parse_params(args.params), where="--params")
    path = train_parent(args.davis_root, read_sequence_list(args.split_file), args.out, cfg, seed=args.seed,
                        device=resolve_device(args.device))
    print(path)


def cmd_finetune(args: argparse.Namespace) -> None:
    from .osvos.finetune import finetune_sequence

    params, manifest = synthetic_settings(args.params, args.synthetic_manifest)
    cfg = from_dict(OSVOSConfig, params, where="--params")
    meta = finetune_sequence(args.davis_root, args.sequence, args.mode, args.parent, manifest, args.out, cfg,
                             seed=args.seed, device=resolve_device(args.device))
    print(json.dumps({k: meta[k] for k in ("sequence", "mode", "objects", "n_frames")}))


def cmd_evaluate(args: argparse.Namespace) -> None:
    seqs = [s for s in (args.sequences or "").split(",") if s] or None
    df = davis_eval.evaluate(args.results, args.davis_root, seqs, args.mode, args.pred_subdir)
    summary = davis_eval.summarise(df)
    mean_row = pd.DataFrame([{"sequence": "MEAN", "object": 0, **summary}])  # other statistics left empty
    out = pd.concat([df, mean_row.reindex(columns=df.columns)], ignore_index=True)
    out["object"] = out["object"].astype(int)
    out.insert(0, "mode", args.mode)
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False, float_format="%.6f")
    if args.out_json:
        write_json(args.out_json, {**summary, "metric": "DAVIS J&F", "mode": args.mode,
                                   "n_sequences": int(df["sequence"].nunique()), "n_objects": int(len(df)),
                                   "provenance": _runs_provenance(args.results, df["sequence"].unique())})
    print(json.dumps(summary))


def _runs_provenance(results: str, sequences) -> dict:
    """Provenance of the evaluated runs: the fine-tuning config hashes, seeds and commits."""
    hashes, seeds, commits = set(), set(), set()
    for seq in sequences:
        done = Path(results) / seq / "done.json"
        if done.is_file():
            meta = json.loads(done.read_text())
            prov = meta.get("provenance", {})
            hashes.add(str(prov.get("config_hash", meta.get("config_hash", "?"))))
            seeds.add(str(meta.get("seed", prov.get("seed", "?"))))
            commits.add(str(prov.get("git_commit", "?")))
    return {"config_hash": ",".join(sorted(hashes)), "seed": ",".join(sorted(seeds)),
            "git_commit": ",".join(sorted(commits)) or provenance()["git_commit"]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m downstream.osvos_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("parent", help="train a (tiny) parent network on a DAVIS-format train split")
    add_train_split_arguments(a)
    add_run_arguments(a)
    a.set_defaults(func=cmd_parent)

    f = sub.add_parser("finetune", help="online fine-tuning on frame 0 and prediction of all frames (resumable)")
    f.add_argument("--davis-root", required=True)
    f.add_argument("--sequence", required=True)
    f.add_argument("--mode", required=True, choices=["2016", "2017"])
    f.add_argument("--parent", required=True, help="parent state dict (official parent_epoch-239.pth or ours)")
    f.add_argument("--synthetic-manifest", default="none", help="filtering manifest.json with 'kept', or 'none'")
    add_run_arguments(f)
    f.set_defaults(func=cmd_finetune)

    e = sub.add_parser("evaluate", help="DAVIS J&F of a results folder (<sequence>/<frame>.png)")
    e.add_argument("--davis-root", required=True)
    e.add_argument("--results", required=True)
    e.add_argument("--sequences", default="", help="comma-separated; default ImageSets/<mode>/val.txt")
    e.add_argument("--mode", required=True, choices=["2016", "2017"])
    e.add_argument("--out", required=True, help="CSV: one row per (sequence, object) and a MEAN row")
    e.add_argument("--out-json", default="", help="optional JSON summary (J, F, J&F, provenance) for tables")
    e.add_argument("--pred-subdir", default="", help="predictions live in <results>/<sequence>/<pred-subdir>/")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
