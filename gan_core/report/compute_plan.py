"""Compute plan of the paper preset: GPU-hours per rule and per thesis table (ESTIMATES, no GPU measured).

    python -m gan_core.report.compute_plan [--tables table_6_5 table_6_6 ...] [--out-md FILE] [--json FILE]
        [--costs workflow/compute_costs.yaml] [--flops-cache results/compute/flops.json] [--resources DIR]

GPU-hours of a job = sum over its terms of FLOPs per unit x units / sustained throughput:

* FLOPs per unit: counted by :mod:`gan_core.bench.flops` (cached JSON; missing entries are counted first);
* units per job and the throughput assumptions: ``workflow/compute_costs.yaml`` (each with its source);
* jobs per rule of a WIRED table: a Snakemake dry run (``snakemake -n <table> --config preset=paper``) on a
  fake DAVIS tree holding only the val lists with the real split sizes (20 DAVIS-16 and 30 DAVIS-17
  sequences) -- or on the real tree when ``--resources`` points at one; the per-job wildcards of the dry run
  (augmentation setting, DAVIS year) select the FLOP entry and the dataset statistics;
* tables that are not wired (or whose jobs depend on data, e.g. COCO-20i supports): ``formula_tables`` of the
  YAML, marked "formula".

The sustained throughput is calibrated on the thesis' OASIS ADE20K training (see ``calibrate``).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..config import REPO_ROOT, load_yaml
from ..errors import ConfigError, ReproError
from ..utils.atomic import write_json, write_text
from ..utils.cli import run_cli

DEFAULT_COSTS = REPO_ROOT / "workflow" / "compute_costs.yaml"
DEFAULT_FLOPS = REPO_ROOT / "results" / "compute" / "flops.json"
SECONDS_PER_HOUR = 3600.0
NON_GPU_PREFIXES = ("fetch_", "table_", "appendix_")   # downloads; table targets


# ------------------------------------------------------------------------------------- dry-run parsing
@dataclass
class Job:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)


def parse_job_stats(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a Snakemake dry run (``-n``, with or without ``--quiet rules``) as
    {rule: count}, without the 'total' row."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        raise ConfigError("no 'Job stats:' table in the Snakemake output (did the dry run fail?)") from None
    counts: dict[str, int] = {}
    for line in lines[start + 1:]:
        s = line.strip()
        if not s:
            if counts:
                break
            continue
        if s.startswith("job") or set(s) <= set("- "):
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s+(\d+)$", s)
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def parse_jobs(text: str) -> list[Job]:
    """Every planned job of a (non-quiet) dry run: its rule and wildcards."""
    jobs: list[Job] = []
    current: Job | None = None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?(?:rule|checkpoint) ([A-Za-z_][A-Za-z0-9_]*):\s*$", line)
        if m:
            current = Job(m.group(1))
            jobs.append(current)
            continue
        if current is not None:
            w = re.match(r"^\s+wildcards: (.*)$", line)
            if w:
                current.wildcards = dict(kv.split("=", 1) for kv in w.group(1).split(", ") if "=" in kv)
            elif not line.startswith(" "):
                current = None
    return jobs


def fake_davis_tree(resources: Path, n16: int = 20, n17: int = 30) -> None:
    """A DAVIS-2017 folder with only the split lists and the fetch marker: enough for Snakemake to plan.
    DAVIS-16 val is a subset of DAVIS-17 val (as in the real data): the names overlap."""
    davis = resources / "davis2017_trainval_480p" / "DAVIS"
    for year, n in (("2016", n16), ("2017", n17)):
        d = davis / "ImageSets" / year
        d.mkdir(parents=True, exist_ok=True)
        (d / "val.txt").write_text("".join(f"seq{i:02d}\n" for i in range(n)))
        (d / "train.txt").write_text("train00\n")
    (resources / "davis2017_trainval_480p" / ".complete").write_text("fake tree for a dry run\n")


def dry_run(targets: Sequence[str], resources: Path, results: Path) -> str:
    """stdout of ``snakemake -n --nolock TARGETS --config preset=paper resources_dir=... results_dir=...``."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", *targets, "--config", "preset=paper",
           f"resources_dir={resources}", f"results_dir={results}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=1800)
    if res.returncode != 0:
        raise ReproError(f"dry run of {' '.join(targets)} failed:\n{(res.stdout + res.stderr)[-3000:]}")
    return res.stdout


# ------------------------------------------------------------------------------------ dataset statistics
@dataclass
class SplitStats:
    """Per-sequence frames and objects of one DAVIS val split."""
    frames: list[float]
    objects: list[float]
    source: str
    names: list[str] = field(default_factory=list)   # sequence names (real tree); empty: seqNN of the fake tree

    @property
    def sequences(self) -> int:
        return len(self.frames)


def stats_from_costs(costs: Mapping[str, Any]) -> dict[str, SplitStats]:
    out = {}
    for year in ("2016", "2017"):
        d = costs["datasets"][f"davis{year}"]
        n = int(d["sequences"])
        out[year] = SplitStats([d["frames"] / n] * n, [d["objects"] / n] * n, "compute_costs.yaml (split totals)")
    return out


def stats_from_tree(davis_root: Path) -> dict[str, SplitStats] | None:
    """Frames and first-frame objects per val sequence of a real DAVIS tree, or None without JPEGImages."""
    import numpy as np
    from PIL import Image

    if not (davis_root / "JPEGImages" / "480p").is_dir():
        return None
    out = {}
    for year in ("2016", "2017"):
        seqs = (davis_root / "ImageSets" / year / "val.txt").read_text().split()
        frames, objects = [], []
        for seq in seqs:
            frames.append(len(list((davis_root / "JPEGImages" / "480p" / seq).glob("*.jpg"))))
            if year == "2016":
                objects.append(1)
                continue
            first = sorted((davis_root / "Annotations" / "480p" / seq).glob("*.png"))[0]
            ids = np.unique(np.asarray(Image.open(first)))
            objects.append(int(((ids > 0) & (ids < 255)).sum()))
        out[year] = SplitStats(frames, objects, f"counted in {davis_root}", names=seqs)
    return out


# -------------------------------------------------------------------------------------------- throughput
def calibrate(costs: Mapping[str, Any], flops: Mapping[str, float]) -> dict[str, Any]:
    """Sustained throughput (FLOP/s) of the reference GPU, and both thesis anchors' implied throughputs.

    Anchor "training_days": FLOPs(image) x epochs x images / (days x 4 GPUs) = sustained FLOP/s per V100.
    Anchor "ms_per_image": FLOPs(image) / 0.95 ms, over the 4 GPUs. The fraction of the V100 peak that the
    chosen anchor implies is transferred to the reference GPU (same fraction of its peak)."""
    tp, cal = costs["throughput"], costs["calibration"]
    f_img = float(flops[cal["flops"]])
    total = f_img * cal["epochs"] * cal["train_images"]
    per_gpu_days = total / (cal["training_days"] * 86400.0 * cal["gpus"])
    per_gpu_ms = f_img / (cal["ms_per_image"] * 1e-3) / cal["gpus"]
    v100_peak = cal["peak_tflops"] * 1e12
    anchors = {
        "training_days": {"sustained_tflops_per_gpu": per_gpu_days / 1e12, "fraction_of_peak": per_gpu_days / v100_peak},
        "ms_per_image": {"sustained_tflops_per_gpu": per_gpu_ms / 1e12, "fraction_of_peak": per_gpu_ms / v100_peak},
    }
    for check in cal.get("cross_checks", []):
        per_gpu = float(flops[check["flops"]]) * check["units"] / (check["training_days"] * 86400.0 * cal["gpus"])
        anchors[check["what"]] = {"sustained_tflops_per_gpu": per_gpu / 1e12, "fraction_of_peak": per_gpu / v100_peak,
                                  "cross_check": True}
    out = {"flops_per_image": f_img, "anchors": anchors, "reference_gpu": tp["reference_gpu"],
           "reference_peak_tflops": tp["peak_tflops"], "use": tp["use"], "anchor": cal["anchor"]}
    if tp["use"] == "calibrated":
        frac = anchors[cal["anchor"]]["fraction_of_peak"]
        if not 0 < frac <= 1:
            raise ConfigError(f"compute_costs.yaml: the calibration anchor {cal['anchor']!r} implies {frac:.1f} x the "
                              f"V100 peak, which is impossible; choose another anchor or use: assumed")
        out["fraction"] = frac
        out["basis"] = f"calibrated: OASIS ADE20K, thesis anchor '{cal['anchor']}'"
    elif tp["use"] == "assumed":
        out["fraction"] = float(tp["assumed_fraction"])
        out["basis"] = "ASSUMED fraction of peak"
    else:
        raise ConfigError(f"compute_costs.yaml throughput.use must be 'calibrated' or 'assumed', got {tp['use']!r}")
    out["sustained_tflops"] = out["fraction"] * tp["peak_tflops"]
    return out


# ------------------------------------------------------------------------------------------ job costing
def _flops_key(spec: Any, wildcards: Mapping[str, str], where: str) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping) and "wildcard" in spec:
        value = wildcards.get(spec["wildcard"])
        if value in spec:
            return spec[value]
        if "_other" in spec:               # every value not named (e.g. the OASIS U-Net variants)
            return spec["_other"]
        raise ConfigError(f"{where}: no FLOP entry for {spec['wildcard']}={value!r}")
    raise ConfigError(f"{where}: 'flops' must be a name or a {{wildcard: ..., value: name}} mapping")


def _lookup(flops: Mapping[str, float], key: str, where: str) -> float:
    if key not in flops:
        raise ConfigError(f"{where}: FLOP entry {key!r} missing; run python -m gan_core.bench.flops --only {key}")
    return float(flops[key])


def stm_video_flops(parts: Mapping[str, float], split: SplitStats, extra_pairs: int, mem_every: int) -> float:
    """STM over all sequences of a split: per sequence, memorize the extra pairs, then for every frame
    t >= 1 memorize frame t-1 and segment frame t reading the memory (``expected_memory_sizes``)."""
    from downstream.stm.inference import expected_memory_sizes

    from ..bench.flops import stm_frame_flops

    total = 0.0
    for frames, objects in zip(split.frames, split.objects):
        n = max(2, round(frames))
        sizes = expected_memory_sizes(n, mem_every, extra_pairs)
        total += extra_pairs * objects * parts["stm_memorize_object"]
        total += sum(stm_frame_flops(parts, objects, t) for t in sizes)
    return total


def job_flops(rule: str, spec: Mapping[str, Any], wildcards: Mapping[str, str], flops: Mapping[str, float],
              stats: Mapping[str, SplitStats]) -> float:
    """FLOPs of one job of ``rule`` (spec = compute_costs.yaml rules.<rule>)."""
    total = 0.0
    for i, term in enumerate(spec.get("terms", [])):
        where = f"compute_costs.yaml rules.{rule}.terms[{i}]"
        if term.get("stm_video"):
            split = stats[wildcards["year"]]
            extra = _wildcard_value(term["extra_pairs"], wildcards, where)
            parts = {k: _lookup(flops, k, where) for k in
                     ("stm_memorize_object", "stm_segment_base", "stm_decode_object", "stm_read_object_memframe")}
            total += stm_video_flops(parts, split, int(extra), int(term["mem_every"]))
            continue
        f = _lookup(flops, _flops_key(term["flops"], wildcards, where), where)
        units = float(_wildcard_value(term["units"], wildcards, where)) * float(term.get("scale", 1.0))
        per = term.get("per")
        if per:
            split = stats[wildcards["year"]]
            i_seq = _sequence_index(wildcards, split)
            objects, frames = split.objects[i_seq], split.frames[i_seq]
            if per == "objects_per_sequence":
                units *= objects
            elif per == "frames_x_objects_per_sequence":
                units *= objects * frames
            else:
                raise ConfigError(f"{where}: unknown 'per' {per!r}")
        total += f * units
    return total


def _wildcard_value(spec: Any, wildcards: Mapping[str, str], where: str) -> Any:
    if isinstance(spec, Mapping) and "wildcard" in spec:
        value = wildcards.get(spec["wildcard"])
        if value not in spec:
            raise ConfigError(f"{where}: no value for {spec['wildcard']}={value!r}")
        return spec[value]
    return spec


def _sequence_index(wildcards: Mapping[str, str], split: SplitStats) -> int:
    """Index of the job's sequence in the split (by name on a real tree; seqNN on the fake tree, whose
    statistics are split means; otherwise the sequence of mean length)."""
    seq = wildcards.get("seq", "")
    if seq in split.names:
        return split.names.index(seq)
    m = re.fullmatch(r"seq(\d+)", wildcards.get("seq", ""))
    if m and int(m.group(1)) < split.sequences:
        return int(m.group(1))
    return 0 if len(set(split.frames)) == 1 and len(set(split.objects)) == 1 else _mean_index(split)


def _mean_index(split: SplitStats) -> int:
    mean = sum(split.frames) / split.sequences
    return min(range(split.sequences), key=lambda i: abs(split.frames[i] - mean))


@dataclass
class Row:
    table: str
    item: str
    jobs: int
    gpu_hours: float
    flops: float
    source: str             # "dry run" | "formula" | "fixed bound" | "not costed" | "cpu"
    work: str = ""


def plan_rules(table: str, jobs: Iterable[Job], costs: Mapping[str, Any], flops: Mapping[str, float],
               stats: Mapping[str, SplitStats], sustained_flops: float) -> list[Row]:
    """One row per rule of a dry run's jobs (wired table)."""
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    rules, cpu = costs.get("rules", {}), set(costs.get("cpu_rules", []))
    rows = []
    for rule, rjobs in by_rule.items():
        if rule.startswith(NON_GPU_PREFIXES) or rule in cpu:
            rows.append(Row(table, rule, len(rjobs), 0.0, 0.0, "cpu"))
            continue
        spec = rules.get(rule)
        if spec is None:
            rows.append(Row(table, rule, len(rjobs), float("nan"), float("nan"), "not costed"))
            continue
        if "gpu_hours_per_job" in spec:
            h = float(spec["gpu_hours_per_job"])
            rows.append(Row(table, rule, len(rjobs), h * len(rjobs), float("nan"), "fixed bound",
                            f"{h:g} h/job (upper bound, see compute_costs.yaml)"))
            continue
        f = sum(job_flops(rule, spec, j.wildcards, flops, stats) for j in rjobs)
        rows.append(Row(table, rule, len(rjobs), f / sustained_flops / SECONDS_PER_HOUR, f, "dry run",
                        _describe(spec, flops)))
    return rows


def _describe(spec: Mapping[str, Any], flops: Mapping[str, float]) -> str:
    parts = []
    for term in spec.get("terms", []):
        if term.get("stm_video"):
            parts.append("all frames of all val sequences: memorize t-1 + segment t with the memory (stm_* TFLOP)")
            continue
        key = term["flops"]
        names = sorted(set(v for k, v in key.items() if k != "wildcard")) if isinstance(key, Mapping) else [key]
        fl = "/".join(f"{flops[n] / 1e12:.3g}" for n in names if n in flops)
        per = {"objects_per_sequence": " x objects/sequence",
               "frames_x_objects_per_sequence": " x frames x objects/sequence"}.get(term.get("per"), "")
        u = term["units"]
        units = "/".join(f"{v:g}" for k, v in u.items() if k != "wildcard") if isinstance(u, Mapping) else f"{u:g}"
        parts.append(f"{units} {term.get('unit', 'units')}{per} x {fl} TFLOP")
    return "; ".join(parts)


def plan_formula(table: str, spec: Mapping[str, Any], flops: Mapping[str, float], sustained_flops: float) -> list[Row]:
    rows = []
    for i, item in enumerate(spec.get("items", [])):
        where = f"compute_costs.yaml formula_tables.{table}.items[{i}]"
        f_unit = _lookup(flops, item["flops"], where)
        per_job = f_unit * float(item["units"]) * float(item.get("scale", 1.0))
        f = per_job * int(item["jobs"])
        scale = f" x {item['scale']:g} (scale)" if item.get("scale", 1.0) != 1.0 else ""
        rows.append(Row(table, item["what"], int(item["jobs"]), f / sustained_flops / SECONDS_PER_HOUR, f, "formula",
                        f"{float(item['units']):g} {item.get('unit', 'units')} x {f_unit / 1e12:.3g} TFLOP{scale}"))
    return rows


# -------------------------------------------------------------------------------------------- rendering
def _h(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else (f"{x:.1f}" if x >= 1 else f"{x:.2f}")


def to_markdown(rows: Sequence[Row], cal: Mapping[str, Any], union: Mapping[str, Any] | None = None,
                fallbacks: Mapping[str, str] | None = None) -> str:
    out = [f"GPU-hours on one {cal['reference_gpu']} at a sustained {cal['sustained_tflops']:.2f} TFLOP/s "
           f"({cal['fraction'] * 100:.0f} % of its {cal['reference_peak_tflops']:g} TFLOP/s FP32 peak; "
           f"{cal['basis']}). ESTIMATES from counted FLOPs, not measurements.", "",
           "| table | rule / item | jobs | work per job | GPU-h | source |", "|---|---|---|---|---|---|"]
    tables: dict[str, list[Row]] = {}
    for r in rows:
        tables.setdefault(r.table, []).append(r)
    for table, trs in tables.items():
        for r in trs:
            if r.source == "cpu":
                continue
            out.append(f"| {table} | {r.item} | {r.jobs} | {r.work} | {_h(r.gpu_hours)} | {r.source} |")
        tot = sum(r.gpu_hours for r in trs if r.gpu_hours == r.gpu_hours)
        missing = [r.item for r in trs if r.source == "not costed"]
        note = f" (not costed: {', '.join(missing)})" if missing else ""
        out.append(f"| **{table}** | **total**{note} | | | **{_h(tot)}** | |")
    if union:
        nc = f" (not costed: {', '.join(union['not_costed'])})" if union.get("not_costed") else ""
        out += ["", "Tables share jobs (e.g. the default OSMIS models of the DAVIS-17 first frames serve Tables "
                    f"6.1-6.5); the dry-run tables together (one dry run of {', '.join(union['tables'])}): "
                    f"**{_h(union['gpu_hours'])} GPU-h**{nc}."]
    if fallbacks:
        out += ["", "Wired tables planned from formulas because their paper-preset dry run needs data that is not "
                    "here:"] + [f"* {t}: {r}" for t, r in fallbacks.items()]
    return "\n".join(out) + "\n"


def to_summary(rows: Sequence[Row], cal: Mapping[str, Any]) -> str:
    """One line per table: GPU jobs, GPU-hours, the largest item, how the jobs were planned."""
    out = [f"GPU-hours on one {cal['reference_gpu']} at a sustained {cal['sustained_tflops']:.2f} TFLOP/s "
           f"({cal['basis']}). ESTIMATES, not measurements.", "",
           "| table | GPU jobs | GPU-h | GPU-days | largest item | planned by |", "|---|---|---|---|---|---|"]
    tables: dict[str, list[Row]] = {}
    for r in rows:
        tables.setdefault(r.table, []).append(r)
    for table, trs in tables.items():
        gpu = [r for r in trs if r.source != "cpu"]
        costed = [r for r in gpu if r.gpu_hours == r.gpu_hours]
        tot = sum(r.gpu_hours for r in costed)
        big = max(costed, key=lambda r: r.gpu_hours, default=None)
        share = f"{big.item} ({big.gpu_hours / tot * 100:.0f} %)" if big and tot > 0 else "-"
        how = ", ".join(sorted({r.source for r in gpu}))
        missing = [r.item for r in gpu if r.source == "not costed"]
        if missing:
            how += f"; not costed: {', '.join(missing)}"
        out.append(f"| {table} | {sum(r.jobs for r in gpu)} | {_h(tot)} | {_h(tot / 24)} | {share} | {how} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ driver
@dataclass
class PlanConfig:
    tables: list[str] | None = None          # None: every wired table + every formula table
    costs: Path = DEFAULT_COSTS
    flops_cache: Path = DEFAULT_FLOPS
    resources: Path | None = None            # a real resources dir (DAVIS tree); None: fake tree
    union: bool = True                       # also plan all wired tables in one dry run
    prefer_formula: bool = False             # plan tables that have a formula by it, even when wired


def wired_tables() -> list[str]:
    return list(load_yaml(REPO_ROOT / "config.yaml")["tables"])


def run(cfg: PlanConfig, log=lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    from ..bench.flops import compute, flat

    costs = load_yaml(cfg.costs)
    flops = flat(compute(None, cfg.flops_cache, log=log))
    cal = calibrate(costs, flops)
    sustained = cal["sustained_tflops"] * 1e12
    wired = wired_tables()
    formula = costs.get("formula_tables", {})
    tables = cfg.tables or (wired + [t for t in formula if t not in wired])
    unknown = [t for t in tables if t not in wired and t not in formula]
    if unknown:
        raise ConfigError(f"tables {unknown} are neither wired (config.yaml tables) nor in compute_costs.yaml "
                          f"formula_tables")
    with tempfile.TemporaryDirectory(prefix="compute_plan_") as tmp:
        tmp = Path(tmp)
        if cfg.resources is None:
            resources = tmp / "resources"
            fake_davis_tree(resources, costs["datasets"]["davis2016"]["sequences"],
                            costs["datasets"]["davis2017"]["sequences"])
            stats = stats_from_costs(costs)
        else:
            resources = Path(cfg.resources)
            stats = stats_from_tree(resources / "davis2017_trainval_480p" / "DAVIS") or stats_from_costs(costs)

        def attempt(targets: list[str]) -> tuple[str, str | None, str | None]:
            key = "+".join(targets)
            try:
                return key, dry_run(targets, resources, tmp / ("results_" + "_".join(targets))), None
            except ReproError as exc:
                return key, None, _reason(str(exc))

        dry = [t for t in tables if t in wired and not (cfg.prefer_formula and t in formula)]
        log(f"dry runs (preset=paper): {', '.join(dry)}")
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = {k: (o, r) for k, o, r in pool.map(attempt, [[t] for t in dry])}
        planned = [t for t in dry if results[t][0] is not None]
        union = None
        if cfg.union and len(planned) > 1:
            key, out, reason = attempt(planned)
            if out is not None:
                urows = plan_rules("all", parse_jobs(out), costs, flops, stats, sustained)
                union = {"tables": planned, "gpu_hours": sum(r.gpu_hours for r in urows if r.gpu_hours == r.gpu_hours),
                         "not_costed": sorted({r.item for r in urows if r.source == "not costed"})}
    rows: list[Row] = []
    fallbacks: dict[str, str] = {}
    for table in tables:
        out, reason = results.get(table, (None, None))
        if out is not None:
            rows += plan_rules(table, parse_jobs(out), costs, flops, stats, sustained)
        elif table in formula:
            if reason:
                fallbacks[table] = reason
            rows += plan_formula(table, formula[table], flops, sustained)
        else:
            rows.append(Row(table, f"not planned: {reason}", 0, float("nan"), float("nan"), "not costed"))
    return {"rows": rows, "calibration": cal, "union": union, "stats_source": {y: s.source for y, s in stats.items()},
            "flops": flops, "fallbacks": fallbacks}


def _reason(message: str) -> str:
    """The most telling line of a failed dry run (a missing dataset, a 'not built yet')."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for pattern in ("is missing", "not built yet", "MissingInput", "Error"):
        for line in lines:
            if pattern in line and not line.startswith("dry run of"):
                return line if len(line) <= 200 else line[:200] + " ..."
    return lines[-1][:200] if lines else "dry run failed"


def _command(args: argparse.Namespace) -> int:
    res = run(PlanConfig(args.tables, Path(args.costs), Path(args.flops_cache),
                         Path(args.resources) if args.resources else None, args.union, args.prefer_formula))
    if args.summary:
        md = to_summary(res["rows"], res["calibration"])
        if res["fallbacks"]:
            md += "\nPlanned from formulas (their paper-preset dry run needs data that is not here): " + \
                  ", ".join(res["fallbacks"]) + ".\n"
    else:
        md = to_markdown(res["rows"], res["calibration"], res["union"], res["fallbacks"])
    cal = res["calibration"]
    md += "\nCalibration (OASIS, ADE20K, 4 V100): " + "; ".join(
        f"{k}: {v['sustained_tflops_per_gpu']:.2f} TFLOP/s per GPU = {v['fraction_of_peak'] * 100:.0f} % of peak"
        for k, v in cal["anchors"].items()) + f"; FLOPs per training image {cal['flops_per_image'] / 1e12:.3g} T.\n"
    md += "DAVIS statistics: " + "; ".join(f"{y}: {s}" for y, s in res["stats_source"].items()) + ".\n"
    if args.out_md:
        write_text(args.out_md, md)
    else:
        print(md)
    if args.json:
        write_json(args.json, {"rows": [r.__dict__ for r in res["rows"]], "calibration": cal, "union": res["union"]})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.report.compute_plan", description=__doc__.split("\n")[0])
    p.add_argument("--tables", nargs="*", default=None, help="table ids (default: wired + formula tables)")
    p.add_argument("--out-md", default=None, help="write the Markdown table here (atomic); default: stdout")
    p.add_argument("--json", default=None, help="also write rows and calibration as JSON")
    p.add_argument("--costs", default=str(DEFAULT_COSTS))
    p.add_argument("--flops-cache", default=str(DEFAULT_FLOPS))
    p.add_argument("--resources", default=None, help="a resources dir with the real DAVIS tree (else: fake tree)")
    p.add_argument("--no-union", dest="union", action="store_false")
    p.add_argument("--summary", action="store_true", help="one line per table instead of one per rule")
    p.add_argument("--prefer-formula", action="store_true",
                   help="use compute_costs.yaml formulas for the tables that have one (the thesis' full tables)")
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
