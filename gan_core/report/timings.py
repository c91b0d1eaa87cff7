"""Summarise Snakemake benchmark files: time per stage (rule) of a preset.

``python -m gan_core.report.timings results/tiny/benchmarks`` prints one Markdown row per
rule: number of jobs, mean and total wall-clock seconds, and peak memory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..utils.cli import run_cli


def summarise(bench_dir: str | Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted(Path(bench_dir).rglob("*.tsv")):
        rule = tsv.relative_to(bench_dir).parts[0].removesuffix(".tsv")
        df = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "s": float(df["s"].iloc[-1]), "max_rss_mb": float(df.get("max_rss", pd.Series([0])).iloc[-1] or 0)})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "mean_s", "total_s", "max_rss_mb"])
    df = pd.DataFrame(rows)
    return (df.groupby("rule", sort=False)
              .agg(jobs=("s", "size"), mean_s=("s", "mean"), total_s=("s", "sum"), max_rss_mb=("max_rss_mb", "max"))
              .reset_index())


def _command(args: argparse.Namespace) -> int:
    df = summarise(args.bench_dir)
    print("| stage (rule) | jobs | mean s/job | total s | peak RSS MB |\n|---|---|---|---|---|")
    for r in df.itertuples():
        print(f"| {r.rule} | {r.jobs} | {r.mean_s:.1f} | {r.total_s:.0f} | {r.max_rss_mb:.0f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_dir")
    ap.set_defaults(func=_command)
    return run_cli(ap, argv)


if __name__ == "__main__":
    sys.exit(main())
