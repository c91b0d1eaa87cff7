"""Fig. 5.6 (thesis l.1519-1521): SIV-GAN in the Single Video setting against the skip factor.

A skip factor i = every i-th frame of a long video, the number of frames kept fixed (thesis: 100).
The figure plots, per metric (Dist. to train and SIFID), our SIV-GAN curve from the averaged
metric files of the workflow; baselines we did not run (FastGAN) are named in the legend area
as "not run", never drawn with numbers.

    python -m gan_core.report.sivgan_figure '{"figures": [{"out": ..., "files": {"1": f1, ...},
        "metrics": ["dist_train", "sifid_4"], "not_run": {"FastGAN": "reason"}, "title": ..., "preset": ...}]}'
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..utils.atomic import atomic_path  # noqa: E402
from ..utils.cli import run_cli  # noqa: E402
from ..utils.jsonfile import read_json  # noqa: E402

LABELS = {"dist_train": "Dist. to train", "sifid_4": "SIFID (H×W/4)", "sifid_16": "SIFID (H×W/16)",
          "lpips": "LPIPS"}


def curve(files: Mapping[str, str], metric: str) -> tuple[list[int], list[float]]:
    """(skip factors, values) of the files that hold the metric, sorted by skip factor."""
    xs, ys = [], []
    for k in sorted(files, key=int):
        rec = read_json(files[k], "metric file")
        if rec.get(metric) is not None:
            xs.append(int(k))
            ys.append(float(rec[metric]))
    return xs, ys


def skip_factor_figure(spec: Mapping[str, Any]) -> Path:
    metrics = list(spec["metrics"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        xs, ys = curve(spec["files"], metric)
        ax.plot(xs, ys, "o-", color="tab:blue", label="SIV-GAN (ours)")
        for name, reason in spec.get("not_run", {}).items():
            ax.plot([], [], " ", label=f"{name}: not run")
        ax.set_xlabel("skip factor")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.set_xticks(xs or [])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    title = spec.get("title", "Fig. 5.6")
    if spec.get("preset") == "tiny":
        title += "\nTINY PRESET: synthetic data, tiny networks, random-init metric networks (not thesis numbers)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out


def _command(args: argparse.Namespace) -> int:
    for spec in json.loads(args.spec)["figures"]:
        print(f"[figure] {skip_factor_figure(spec)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.report.sivgan_figure", description=__doc__.split("\n")[0])
    p.add_argument("spec", help='JSON object {"figures": [...]} (see the module docstring)')
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
