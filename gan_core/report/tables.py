"""Render a thesis table: our value (mean +- std over seeds) | thesis value | difference.

Inputs are a *plan* (which metric file holds which cell for which seed) and the
transcribed thesis table (workflow/thesis_tables.yaml). Rows of the thesis that
the workflow does not build yet are listed with their status, never with a
number. Tiny-preset tables carry a banner saying their numbers are not thesis
numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError
from ..utils.atomic import write_text
from ..utils.cli import run_cli
from ..utils.jsonfile import read_json

PRESET_BANNER = {
    "tiny": ("TINY PRESET: embedded synthetic data, tiny networks, random-init evaluation networks, few "
             "iterations and seeds. These numbers only prove the wiring; they are NOT the thesis' numbers "
             "and must not be presented as such."),
    "quick": ("QUICK PRESET: real data and official weights, but shortened schedules and fewer seeds; "
              "not the thesis protocol."),
    "paper": "PAPER PRESET: the thesis protocol.",
}


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    config_hashes: set[str] = field(default_factory=set)
    commits: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    not_built: set[str] = field(default_factory=set)  # reasons of cells a builder cannot compute yet

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        # Population std over seeds (ddof=0) is undefined-free for one seed; we report the
        # sample std (ddof=1) as is usual for "mean +- std over runs", 0 for a single run.
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0


def read_metric(path: str | Path, key: str) -> tuple[float, dict[str, Any]]:
    """Read ``key`` from a metric JSON file written by a workflow rule."""
    path = Path(path)
    data = read_json(path, "metric file")
    if key not in data:
        raise DataError(path, f"metric {key!r} not in file (keys: {sorted(data)})")
    value = data[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DataError(path, f"metric {key!r} is not a number: {value!r}")
    return float(value), data.get("provenance", {})


def collect(plan: Mapping[str, Any]) -> dict[tuple[str, str], Cell]:
    """Read every metric file named in the plan into cells keyed by (row, column)."""
    cells: dict[tuple[str, str], Cell] = {}
    for row_id, row in plan["rows"].items():
        for col_id, entries in row.get("cells", {}).items():
            cell = cells.setdefault((row_id, col_id), Cell())
            for entry in entries:
                if "not_built" in entry:  # a builder's honest "this cell is not computable yet"
                    cell.not_built.add(str(entry["not_built"]))
                    continue
                value, prov = read_metric(entry["file"], entry["key"])
                cell.values.append(value * float(entry.get("scale", 1.0)))
                cell.seeds.append(int(entry["seed"]))
                cell.config_hashes.add(str(prov.get("config_hash", "?")))
                cell.commits.add(str(prov.get("git_commit", "?")))
                if "weights_label" in prov:
                    cell.labels.add(str(prov["weights_label"]))
    return cells


def build_rows(table_id: str, thesis: Mapping[str, Any], plan: Mapping[str, Any], cells) -> pd.DataFrame:
    """One row per (table row, column) with our value, the thesis value and the difference."""
    columns = [c["id"] for c in thesis["columns"]]
    col_meta = {c["id"]: c for c in thesis["columns"]}
    thesis_rows = {r["id"]: r for r in thesis.get("rows", [])}
    order = list(thesis_rows) + [r for r in plan["rows"] if r not in thesis_rows]
    records = []
    for row_id in order:
        t_row = thesis_rows.get(row_id, {})
        p_row = plan["rows"].get(row_id)
        label = (p_row or {}).get("label") or t_row.get("label", row_id)
        for col in columns:
            thesis_value = (t_row.get("thesis") or {}).get(col)
            thesis_std = (t_row.get("thesis_std") or {}).get(col)
            reported = (t_row.get("reported") or {}).get(col)
            rec = {
                "table": table_id, "row": row_id, "label": label, "column": col,
                "column_label": col_meta[col].get("label", col), "metric": col_meta[col].get("metric", ""),
                "kind": t_row.get("kind", "experiment (added)"),
                "thesis": thesis_value, "thesis_std": thesis_std, "reported": reported,
                "ours_mean": None, "ours_std": None, "n_seeds": 0, "seeds": "", "diff": None,
                "status": "", "config_hashes": "", "git_commits": "", "preset": plan["preset"],
            }
            cell = cells.get((row_id, col))
            if p_row is None:
                rec["status"] = _status_for_unbuilt(t_row, plan)
            elif cell is not None and cell.not_built and not cell.values:
                rec["status"] = "not built yet: " + "; ".join(sorted(cell.not_built))
            elif (cell is None or not cell.values) and thesis_value is None:
                rec["status"] = ""  # not applicable: neither the thesis nor our wiring has a value here
            elif cell is None or not cell.values:
                rec["status"] = "no cell wired for this column"
            else:
                rec.update(
                    ours_mean=cell.mean, ours_std=cell.std, n_seeds=len(cell.values),
                    seeds=",".join(str(s) for s in cell.seeds),
                    diff=None if thesis_value is None else cell.mean - float(thesis_value),
                    status="computed" + (f" ({'; '.join(sorted(cell.labels))})" if cell.labels else ""),
                    config_hashes=",".join(sorted(cell.config_hashes)),
                    git_commits=",".join(sorted(cell.commits)),
                )
            records.append(rec)
    return pd.DataFrame.from_records(records)


def _status_for_unbuilt(t_row: Mapping[str, Any], plan: Mapping[str, Any]) -> str:
    if t_row.get("kind") == "cited":
        return f"cited ({t_row.get('source') or 'literature'}); not re-run"
    for prefix, reason in plan.get("not_built", {}).items():
        if t_row.get("id", "").startswith(prefix) or t_row.get("system") == prefix:
            return f"not built yet: {reason}"
    return "not built yet"


def _fmt(value: Any, std: Any = None, digits: int = 2) -> str:
    """``value ± std``; no ± part when std is None/NaN (thesis cells without std, single seeds)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    s = f"{float(value):.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {float(std):.{digits}f}"
    return s


def to_markdown(df: pd.DataFrame, thesis: Mapping[str, Any], preset: str, digits: int = 2,
                our_note: str = "") -> str:
    """A readable table: one line per thesis row, three sub-columns per thesis column."""
    cols = [c["id"] for c in thesis["columns"]]
    labels = {c["id"]: c.get("label", c["id"]) for c in thesis["columns"]}
    lines = [
        f"# Table {thesis.get('number', '?')}: {thesis.get('caption', '')}",
        "",
        f"**Preset: {preset}.** {PRESET_BANNER.get(preset, '')}",
        "",
        f"Thesis values transcribed from the thesis text, lines {thesis.get('thesis_lines')}. "
        "Ours = mean ± sample std over seeds; Δ = ours − thesis.",
        "",
    ]
    header = ["Row"] + [f"{labels[c]} ours" for c in cols] + [f"{labels[c]} thesis" for c in cols] + \
        [f"{labels[c]} Δ" for c in cols] + ["seeds", "status"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row_id, group in df.groupby("row", sort=False):
        g = group.set_index("column")
        ours = [_fmt(g.at[c, "ours_mean"], g.at[c, "ours_std"] if g.at[c, "n_seeds"] > 1 else None, digits)
                for c in cols]
        theirs = []
        for c in cols:
            t = _fmt(g.at[c, "thesis"], g.at[c, "thesis_std"], digits)
            if g.at[c, "reported"] is not None and not pd.isna(g.at[c, "reported"]):
                t += f" ({_fmt(g.at[c, 'reported'], None, digits)})"
            theirs.append(t)
        diffs = [_fmt(g.at[c, "diff"], None, digits) for c in cols]
        seeds = str(int(group["n_seeds"].max()))
        status = "; ".join(sorted(set(s for s in group["status"] if s)))
        lines.append("| " + " | ".join([str(group["label"].iloc[0])] + ours + theirs + diffs + [seeds, status]) + " |")
    commits = sorted(set(",".join(df["git_commits"].dropna()).split(",")) - {""})
    hashes = sorted(set(",".join(df["config_hashes"].dropna()).split(",")) - {""})
    lines += ["", f"Config hashes: {', '.join(hashes) or '—'}. Git commits: {', '.join(commits) or '—'}."]
    if our_note:
        lines += ["", f"Our cells: {our_note}"]
    if thesis.get("note"):
        lines += ["", f"Note (transcription): {thesis['note']}"]
    for note in thesis.get("footnotes", []) or []:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def render(table_id: str, thesis: Mapping[str, Any], plan: Mapping[str, Any], out_csv: Path, out_md: Path) -> pd.DataFrame:
    cells = collect(plan)
    df = build_rows(table_id, thesis, plan, cells)
    banner = PRESET_BANNER.get(plan["preset"], "")
    csv_text = f"# {banner}\n" + df.to_csv(index=False)
    write_text(out_csv, csv_text)
    write_text(out_md, to_markdown(df, thesis, plan["preset"], our_note=plan.get("note", "")))
    return df


def _command(args: argparse.Namespace) -> int:
    from ..config import thesis_tables

    plan_text = args.plan if args.plan.lstrip().startswith("{") else Path(args.plan).read_text()
    plan = json.loads(plan_text)
    thesis = thesis_tables()[args.table]
    render(args.table, thesis, plan, args.out_csv, args.out_md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a thesis table (ours | thesis | diff) from metric files.")
    ap.add_argument("--table", required=True, help="table id, e.g. table_6_5")
    ap.add_argument("--plan", required=True, help="JSON file or string: rows -> columns -> metric files per seed")
    ap.add_argument("--out-csv", required=True, type=Path)
    ap.add_argument("--out-md", required=True, type=Path)
    ap.set_defaults(func=_command)
    return run_cli(ap, argv)


if __name__ == "__main__":
    sys.exit(main())
