"""Tables 6.6-6.8 (RePRI on COCO-20i with OSMIS supports; OSVOS columns of 6.7/6.8): dry-run plans, the paper
preset's missing-data message, and one real end-to-end tiny run of Table 6.6 (slow)."""
import csv
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from workflow_dryrun import REPO, fake_davis, job_counts, snakemake_dry


def _tiny(table, tmp_path):
    return table, snakemake_dry(table, "--config", "preset=tiny", f"results_dir={tmp_path}/results")


def test_tiny_plans_tables_6_6_to_6_8(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        res = dict(pool.map(lambda t: _tiny(t, tmp_path), ["table_6_6", "table_6_7", "table_6_8"]))
    for table, r in res.items():
        assert r.returncode == 0, f"{table}: {r.stderr[-3000:]}"
    c6 = job_counts(res["table_6_6"].stdout)
    # 4 settings x 4 folds x 2 tiny seeds; the pair list is data-dependent (checkpoint coco_supports per fold)
    assert c6["repri_evaluate"] == 4 * 4 * 2 and c6["coco_supports"] == 4 and c6["repri_train_tiny"] == 4
    assert c6["embedded_coco"] == 1 and c6["coco_masks"] == 2          # val (episodes) + train (tiny PSPNet)
    assert c6["repri_synthetic"] == 4 and "fetch_coco2014_val_images" not in c6
    assert "checkpoint" in res["table_6_6"].stdout.lower()
    c7 = job_counts(res["table_6_7"].stdout)
    # rows: reference (standard) + 4 mask supervisions (standard + synthetic), fold 0 / DAVIS-16 (2 sequences)
    assert c7["repri_evaluate"] == 5 * 2 and c7["repri_train_tiny"] == 1 and c7["coco_supports"] == 1
    assert c7["osvos_finetune"] == 5 * 2 * 2 and c7["train_osmis"] == 4 * 2    # DAVIS-16 OSMIS per variant
    for variant in ("ms_projection", "ms_concat", "ms_d_m"):
        assert f"metrics/repri/both/{variant}+sifid1234_drop15/coco20i_fold0" in res["table_6_7"].stdout
    c8 = job_counts(res["table_6_8"].stdout)
    assert c8["repri_evaluate"] == 8 * 2 and c8["osvos_finetune"] == 8 * 2 * 2
    assert c8["sifid_filter"] == 7 * 2                                          # 7 selections x 2 sequences
    out8 = res["table_6_8"].stdout
    assert "metrics/repri/none/real/coco20i_fold0" in out8 and "metrics/osvos/standard/real/davis2016" in out8
    assert "metrics/repri/standard/real" not in out8          # reference row: RePRI without augmentation
    for sel in ("none", "sifid1_drop15", "sifid1234_drop5", "sifid1234_drop10", "sifid1234_drop50"):
        assert f"both/default+{sel}/coco20i_fold0" in out8


def test_paper_without_coco_names_the_fetch_targets(tmp_path):
    res_dir = tmp_path / "resources"
    fake_davis(res_dir, 20, 30)
    common = ["--config", "preset=paper", f"resources_dir={res_dir}", f"results_dir={tmp_path}/results"]
    res = snakemake_dry("table_6_6", *common)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "fetch_coco2014_val_images" in out and "fetch_coco2014_annotations" in out
    assert "repri_coco_checkpoints" in out and "icloud" in out.lower()      # manual weights: how to get them

    # with the COCO markers and the four fold checkpoints present, the paper preset plans at thesis scale
    for name in ("coco2014_val_images", "coco2014_annotations"):
        (res_dir / name).mkdir(parents=True)
        (res_dir / name / ".complete").write_text("test marker\n")
    for k in range(4):
        ck = res_dir / "repri_coco_checkpoints" / "coco" / f"split={k}" / "model" / "pspnet_resnet50" / \
            "smoothing=True" / "mixup=False" / "best.pth"
        ck.parent.mkdir(parents=True)
        ck.write_bytes(b"")
    res = snakemake_dry("table_6_6", *common)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["repri_evaluate"] == 4 * 4 * 5 and counts["coco_supports"] == 4 and counts["coco_masks"] == 1
    assert "repri_train_tiny" not in counts and "embedded_coco" not in counts


@pytest.mark.slow
def test_tiny_table_6_6_end_to_end(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "table_6_6", "--config", "preset=tiny",
           f"results_dir={tmp_path}/results"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-4000:]
    md = (tmp_path / "results" / "tiny" / "tables" / "table_6_6.md").read_text()
    assert "TINY PRESET" in md and "31.20 (31.20)" in md                     # banner, thesis (reported) value
    lines = (tmp_path / "results" / "tiny" / "tables" / "table_6_6.csv").read_text().splitlines()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 4 * 4 and all(r["status"] == "computed" for r in rows)
    assert all(0.0 <= float(r["ours_mean"]) <= 100.0 and r["n_seeds"] == "2" for r in rows)
    assert {r["thesis"] for r in rows if r["row"] == "repri_both"} == {"32.8", "39.0", "34.1", "34.6"}
    pairs = sorted((tmp_path / "results" / "tiny" / "data" / "pairs").glob("coco20i_fold*/*/mask.png"))
    assert len(pairs) == 4 * 2                                # 2 embedded test classes per fold, 1 support each
