"""FLOP counting (gan_core.bench.flops) and the compute planner (gan_core.report.compute_plan)."""
import math

import pytest
import torch
import torch.nn as nn

from gan_core.bench import flops as fl
from gan_core.errors import ConfigError
from gan_core.report import compute_plan as cp

# --------------------------------------------------------------------------------------- FLOP counting


def test_conv_and_linear_flops_match_hand_count():
    """Second source: 2 x (multiply-adds) from the layer shapes, by hand."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    lin = nn.Linear(8 * 16 * 16, 10)
    x = torch.randn(2, 3, 16, 16)
    conv_macs = 2 * 16 * 16 * 8 * (3 * 3 * 3)          # batch x H x W x C_out x (k*k*C_in)
    lin_macs = 2 * (8 * 16 * 16) * 10                   # batch x in x out
    assert fl.count_flops(lambda: conv(x)) == 2 * conv_macs
    assert fl.count_flops(lambda: lin(conv(x).flatten(1))) == 2 * (conv_macs + lin_macs)
    # backward: the input needs no gradient, so each layer adds its weight gradient (= its forward cost),
    # and the linear layer also its input gradient (= its forward cost)
    total = fl.count_flops(lambda: lin(conv(x).flatten(1)).sum().backward())
    assert total == 2 * (2 * conv_macs + 3 * lin_macs)


def test_flops_scale_with_pixels():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, stride=2),
                        nn.Conv2d(16, 4, 1))
    small = fl.count_flops(lambda: net(torch.zeros(1, 3, 32, 48)))
    big = fl.count_flops(lambda: net(torch.zeros(1, 3, 64, 96)))
    assert big == 4 * small
    # a real network of the plan (OSVOS, narrow, shape-only): proportional up to its deconvolution borders
    a = fl.osvos_predict((64, 96), width=0.125)["flops"]
    b = fl.osvos_predict((128, 192), width=0.125)["flops"]
    assert b / a == pytest.approx(4.0, rel=0.05)


def test_stm_parts_reassemble_a_direct_count():
    """The linear decomposition of an STM frame predicts a direct count at other N, T."""
    from downstream.stm.model import STM

    hw = (64, 96)
    parts = fl.stm_parts(hw, backbone="resnet18")
    mode = fl.shape_only()
    with mode:
        model = STM("resnet18").eval()
        frame = torch.empty(1, 3, *hw)
        n, t, h, w = 3, 4, hw[0] // 16, hw[1] // 16
        keys, values = torch.empty(n, model.key_dim, t, h, w), torch.empty(n, model.value_dim, t, h, w)
        masks = torch.empty(n, *hw)
    with mode, torch.no_grad():
        direct = fl.count_flops(lambda: (model.memorize(frame, masks), model.segment(frame, keys, values)))
    assert fl.stm_frame_flops(parts, n, t) == pytest.approx(direct, rel=1e-9)


def test_cache_is_reused_and_unknown_targets_fail(tmp_path):
    cache = tmp_path / "flops.json"
    data = fl.compute(["repri_image"], cache, log=None)
    first = data["entries"]["repri_image"]["flops"]
    data["entries"]["repri_image"]["flops"] = 123.0          # a cached value is not recounted
    from gan_core.utils.atomic import write_json
    write_json(cache, data)
    assert fl.compute(["repri_image"], cache, log=None)["entries"]["repri_image"]["flops"] == 123.0
    assert fl.compute(["repri_image"], cache, refresh=True, log=None)["entries"]["repri_image"]["flops"] == first
    with pytest.raises(ConfigError, match="unknown FLOP target"):
        fl.compute(["nope"], cache, log=None)


# ------------------------------------------------------------------------------------------ the planner
COSTS = {
    "throughput": {"reference_gpu": "X", "peak_tflops": 20.0, "assumed_fraction": 0.5, "use": "assumed"},
    "calibration": {"gpus": 4, "peak_tflops": 10.0, "epochs": 2, "train_images": 1000, "training_days": 1,
                    "ms_per_image": 1.0, "flops": "img", "anchor": "training_days"},
    "datasets": {"davis2016": {"sequences": 2, "frames": 20, "objects": 2},
                 "davis2017": {"sequences": 2, "frames": 30, "objects": 6}},
    "rules": {
        "train": {"terms": [{"flops": "it", "units": 100}]},
        "tune": {"terms": [{"flops": {"wildcard": "aug", "none": "p1", "both": "p2"}, "units": 10,
                            "per": "objects_per_sequence"}]},
        "metric": {"gpu_hours_per_job": 0.5},
    },
    "cpu_rules": ["evaluate"],
}
FLOPS = {"it": 3.6e12, "p1": 1e12, "p2": 2e12, "img": 8.64e12}


def test_calibration_arithmetic():
    cal = cp.calibrate(COSTS, FLOPS)
    # 8.64e12 x 2 x 1000 / (86400 s x 4 GPUs) = 5e10 FLOP/s per GPU = 0.5 % of 10 TFLOP/s
    assert cal["anchors"]["training_days"]["sustained_tflops_per_gpu"] == pytest.approx(0.05)
    assert cal["anchors"]["ms_per_image"]["sustained_tflops_per_gpu"] == pytest.approx(8.64e12 / 1e-3 / 4 / 1e12)
    assert cal["sustained_tflops"] == pytest.approx(10.0)                 # assumed: 0.5 x 20
    calibrated = cp.calibrate({**COSTS, "throughput": {**COSTS["throughput"], "use": "calibrated"}}, FLOPS)
    assert calibrated["sustained_tflops"] == pytest.approx(0.005 * 20.0)
    impossible = {**COSTS, "throughput": {**COSTS["throughput"], "use": "calibrated"},
                  "calibration": {**COSTS["calibration"], "anchor": "ms_per_image"}}
    with pytest.raises(ConfigError, match="impossible"):
        cp.calibrate(impossible, FLOPS)


def test_plan_rules_arithmetic():
    stats = cp.stats_from_costs(COSTS)
    jobs = [cp.Job("train", {"seq": "seq00"}), cp.Job("train", {"seq": "seq01"}),
            cp.Job("tune", {"aug": "none", "year": "2017", "seq": "seq00"}),
            cp.Job("tune", {"aug": "both", "year": "2016", "seq": "seq01"}),
            cp.Job("metric"), cp.Job("evaluate"), cp.Job("fetch_x"), cp.Job("mystery")]
    sustained = 1e12
    rows = {r.item: r for r in cp.plan_rules("t", jobs, COSTS, FLOPS, stats, sustained)}
    assert rows["train"].jobs == 2
    assert rows["train"].gpu_hours == pytest.approx(2 * 100 * 3.6e12 / 1e12 / 3600)        # = 0.2 h
    # tune: 10 passes x objects per sequence (2017: 6/2 = 3; 2016: 2/2 = 1) x FLOPs of the aug's batch
    assert rows["tune"].flops == pytest.approx(10 * 3 * 1e12 + 10 * 1 * 2e12)
    assert rows["metric"].gpu_hours == pytest.approx(0.5) and rows["metric"].source == "fixed bound"
    assert rows["evaluate"].gpu_hours == 0 and rows["fetch_x"].source == "cpu"
    assert rows["mystery"].source == "not costed" and math.isnan(rows["mystery"].gpu_hours)
    md = cp.to_markdown(list(rows.values()), cp.calibrate(COSTS, FLOPS))
    assert "not costed: mystery" in md and "| t | train | 2 |" in md


def test_plan_formula_arithmetic():
    spec = {"items": [{"what": "models", "jobs": 4, "flops": "it", "units": 1000, "scale": 1.25},
                      {"what": "reused", "jobs": 0, "flops": "it", "units": 0}]}
    rows = cp.plan_formula("table_x", spec, FLOPS, 2e12)
    assert rows[0].gpu_hours == pytest.approx(4 * 1000 * 1.25 * 3.6e12 / 2e12 / 3600)
    assert rows[0].source == "formula" and rows[1].gpu_hours == 0
    with pytest.raises(ConfigError, match="FLOP entry 'zz' missing"):
        cp.plan_formula("table_x", {"items": [{"what": "a", "jobs": 1, "flops": "zz", "units": 1}]}, FLOPS, 1e12)


def test_stm_video_flops_by_hand():
    parts = {"stm_memorize_object": 10.0, "stm_segment_base": 100.0, "stm_decode_object": 1.0,
             "stm_read_object_memframe": 0.5}
    split = cp.SplitStats(frames=[4], objects=[2], source="hand")
    # 4 frames, memory every 2nd frame (0, 2), 1 extra pair; frame t reads the extra pair + the scheduled frames
    # s <= t-2 + frame t-1: t=1 -> 1+0+1, t=2 -> 1+1+1, t=3 -> 1+1+1
    sizes = [2, 3, 3]
    frame = lambda t: 100 + 2 * (10 + 1) + 2 * t * 0.5  # noqa: E731
    expected = 1 * 2 * 10 + sum(frame(t) for t in sizes)
    assert cp.stm_video_flops(parts, split, extra_pairs=1, mem_every=2) == pytest.approx(expected)


# --------------------------------------------------------------------------------------- dry-run parser
CAPTURED = """Config file config.yaml is extended by additional config specified via the command line.
Building DAG of jobs...
Job stats:
job                      count
---------------------  -------
fetch_osvos_parent           1
osvos_finetune               3
train_osmis                  2
table_6_5                    1
total                        7


[Wed Nov 25 17:02:32 2026]
rule train_osmis:
    input: r/data/pairs/davis2017/seq28/image.png, r/data/pairs/davis2017/seq28/mask.png
    output: r/train/osmis/default/davis2017/seq28/seed0/done.json
    jobid: 12
    wildcards: variant=default, collection=davis2017, seq=seq28, seed=0
    resources: tmpdir=/tmp, mem_mb=8000, runtime=2880
[Wed Nov 25 17:02:32 2026]
rule train_osmis:
    wildcards: variant=default, collection=davis2016, seq=seq03, seed=0
[Wed Nov 25 17:02:32 2026]
rule osvos_finetune:
    wildcards: aug=both, pool=default+sifid1234_drop15, year=2016, seed=4, seq=seq03
[Wed Nov 25 17:02:32 2026]
rule osvos_finetune:
    wildcards: aug=none, pool=real, year=2017, seed=0, seq=seq00
rule osvos_finetune:
    wildcards: aug=none, pool=real, year=2017, seed=1, seq=seq00
localrule table_6_5:
    input: r/tables/table_6_5.md
    jobid: 0
rule fetch_osvos_parent:
    output: res/osvos_parent/.complete
Job stats:
job                      count
---------------------  -------
osvos_finetune               3
total                        7
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""

QUIET = """Building DAG of jobs...
Job stats:
job               count
--------------  -------
sifid_filter         30
train_osmis          30
total                60

"""


def test_parse_job_stats_and_jobs():
    assert cp.parse_job_stats(CAPTURED) == {"fetch_osvos_parent": 1, "osvos_finetune": 3, "train_osmis": 2,
                                            "table_6_5": 1}
    assert cp.parse_job_stats(QUIET) == {"sifid_filter": 30, "train_osmis": 30}
    jobs = cp.parse_jobs(CAPTURED)
    counts = {}
    for j in jobs:
        counts[j.rule] = counts.get(j.rule, 0) + 1
    assert counts == cp.parse_job_stats(CAPTURED)              # the two views of the dry run agree
    assert jobs[0].wildcards == {"variant": "default", "collection": "davis2017", "seq": "seq28", "seed": "0"}
    assert jobs[2].wildcards["pool"] == "default+sifid1234_drop15" and jobs[2].wildcards["aug"] == "both"
    with pytest.raises(ConfigError, match="Job stats"):
        cp.parse_job_stats("Error in rule x")


# ------------------------------------------------------------------------------ every planned rule is costed
COVERAGE_TABLES = ("table_6_5", "table_6_6", "table_5_3", "table_4_8")   # one per chapter / rule family


def test_every_rule_planned_by_wired_tables_is_costed(tmp_path):
    """A tiny-preset dry run of representative wired tables: each planned rule has a cost spec in
    workflow/compute_costs.yaml or is declared CPU-only (so a new rule cannot silently go uncosted)."""
    import os
    import subprocess
    import sys

    from gan_core.config import REPO_ROOT, load_yaml

    costs = load_yaml(cp.DEFAULT_COSTS)
    wired = cp.wired_tables()
    tables = [t for t in COVERAGE_TABLES if t in wired]
    assert tables, "none of the representative tables is wired"
    cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", *tables, "--config", "preset=tiny",
           f"results_dir={tmp_path / 'results'}", f"resources_dir={tmp_path / 'resources'}"]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    planned = {job.rule for job in cp.parse_jobs(res.stdout)}
    assert planned == set(cp.parse_job_stats(res.stdout))         # the parser saw every job
    known = set(costs["rules"]) | set(costs["cpu_rules"])
    uncosted = sorted(r for r in planned if r not in known and not r.startswith(cp.NON_GPU_PREFIXES))
    assert not uncosted, f"rules planned by {tables} without a cost spec or cpu_rules entry: {uncosted}"
    # the GPU-heavy rules of these tables are planned (the dry run really reached them)
    assert {"train_osmis", "osvos_finetune", "train_sivgan", "train_oasis"} <= planned


def test_train_oasis_flops_follow_the_variant():
    spec = load_costs_rules()["train_oasis"]["terms"][0]["flops"]
    assert cp._flops_key(spec, {"variant": "default"}, "t") == "oasis_image_256"
    assert cp._flops_key(spec, {"variant": "spade_plus"}, "t") == "spade_plus_image_256"
    assert cp._flops_key(spec, {"variant": "d_patchgan"}, "t") == "oasis_g_patchgan_image_256"
    with pytest.raises(ConfigError, match="no FLOP entry"):
        cp._flops_key({"wildcard": "variant", "a": "x"}, {"variant": "b"}, "t")
    # every name the cost file uses is a FLOP target that gan_core.bench.flops can count
    used = {v for k, v in spec.items() if k != "wildcard"}
    assert used <= set(fl.TARGETS)


def load_costs_rules():
    from gan_core.config import load_yaml
    return load_yaml(cp.DEFAULT_COSTS)["rules"]
