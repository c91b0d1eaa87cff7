"""Table 4.1 (OASIS) in the workflow: dry runs of the tiny and paper presets, and one real tiny run (slow)."""
import csv
import os
import subprocess
import sys

import pytest

from workflow_dryrun import REPO, job_counts, snakemake_dry


def test_tiny_table_4_1_is_planned(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    for rule in ("embedded_ade", "train_oasis", "sample_oasis", "oasis_real_val", "oasis_fid", "oasis_segmenter",
                 "oasis_miou_raw", "oasis_miou", "tabulate"):
        assert counts.get(rule) == 1, (rule, counts)
    assert not any(r.startswith("fetch_") for r in counts)  # tiny: nothing downloads


def test_paper_table_4_1_plans_ade20k_and_fid_weights(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=paper", f"resources_dir={tmp_path}/res",
                        f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts.get("fetch_ade20k") == 1 and counts.get("fetch_fid_inception") == 1
    assert counts.get("train_oasis") == 1 and counts.get("oasis_fid") == 1
    # UperNet101 is not built: no segmenter is trained and no mIoU is computed for the paper preset
    assert "oasis_segmenter" not in counts and "oasis_miou" not in counts and "embedded_ade" not in counts


def test_unknown_oasis_param_is_named(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=tiny", f"results_dir={tmp_path}/results",
                        "models={'oasis': {'params': {'lr_gg': 1.0}}}")
    assert res.returncode != 0
    assert "lr_gg" in res.stdout + res.stderr


@pytest.mark.slow
def test_tiny_table_4_1_end_to_end(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "table_4_1", "--config", "preset=tiny",
           f"results_dir={tmp_path}"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    md = (tmp_path / "tiny" / "tables" / "table_4_1.md").read_text()
    assert "TINY PRESET" in md
    lines = (tmp_path / "tiny" / "tables" / "table_4_1.csv").read_text().splitlines()
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))  # first line: TINY banner
    assert lines[0].startswith("# TINY PRESET")
    cells = {(r["row"], r["column"]): r for r in rows}
    for col, thesis in (("ade20k_fid", 28.3), ("ade20k_miou", 48.8)):
        cell = cells[("oasis", col)]
        ours = float(cell["ours_mean"])
        assert cell["status"].startswith("computed")
        assert float(cell["thesis"]) == thesis and abs(float(cell["diff"]) - (ours - thesis)) < 1e-6
    assert float(cells[("oasis", "ade20k_fid")]["ours_mean"]) > 0
    assert 0 <= float(cells[("oasis", "ade20k_miou")]["ours_mean"]) <= 100
    assert "not built yet" in cells[("oasis", "cityscapes_fid")]["status"]
    assert cells[("spade_plus_vgg", "ade20k_fid")]["status"] == "not built yet: SPADE+ not built yet"
    assert cells[("crn", "ade20k_fid")]["status"].startswith("cited")
