"""Synthesis tables 6.1-6.4 (OSMIS on DAVIS-17 first frames): planned by the workflow -- dry runs,
plus the builder / merge helpers of workflow/rules/synthesis.smk checked on hand-made metric files."""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from workflow_dryrun import REPO, fake_davis, job_counts, snakemake_dry


def _wired_variants(table_id: str) -> set[str]:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    return {row["osmis_variant"] for row in cfg["tables"][table_id]["rows"].values()}


def test_tiny_table_6_3_plans_one_pool_per_variant_and_sequence(tmp_path):
    res = snakemake_dry("table_6_3", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    n_var, n_seq = 5, 3  # thesis Table 6.3: 5 mask supervisions; embedded DAVIS-17 val split: 3 sequences
    assert len(_wired_variants("table_6_3")) == n_var
    for rule in ("train_osmis", "sample_osmis", "synthesis_sifid", "synthesis_lpips",
                 "synthesis_mask_alignment", "synthesis_pool_metrics"):
        assert counts[rule] == n_var * n_seq, (rule, counts)
    assert counts["synthesis_average"] == n_var       # one seed (seeds.osmis = [0]), not the 2 downstream seeds
    assert counts["tabulate"] == 1
    # tiny: random-init metric networks, nothing to fetch
    assert not any(k.startswith("fetch_") for k in counts)


def test_paper_synthesis_tables_plan_thesis_scale(tmp_path):
    res_dir = tmp_path / "resources"
    fake_davis(res_dir, 20, 30)
    res = snakemake_dry("table_6_3", "table_6_4", "--config", "preset=paper", f"resources_dir={res_dir}",
                    f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    variants = _wired_variants("table_6_3") | _wired_variants("table_6_4")
    assert len(variants) == 9                         # MCA and N_low-level = 4 share the default model
    # thesis l.1756: one model per DAVIS-17 val video = 30 image-mask pairs, per variant
    assert counts["train_osmis"] == 30 * 9
    assert counts["synthesis_mask_alignment"] == 30 * 9 and counts["synthesis_sifid"] == 30 * 9
    assert counts["synthesis_average"] == 9
    assert counts["tabulate"] == 2
    for entry in ("tv_inception_v3", "tv_alexnet", "tv_resnet18"):
        assert counts[f"fetch_{entry}"] == 1, counts
    per_variant: dict[str, set] = {}
    for m in re.finditer(r"/train/osmis/([^/]+)/davis2017/([^/]+)/seed0/done\.json", res.stdout):
        per_variant.setdefault(m.group(1), set()).add(m.group(2))
    assert {v: len(s) for v, s in per_variant.items()} == {v: 30 for v in variants}


def _tiny_val_sequences() -> list[str]:
    from gan_core.data import embedded_davis as emb

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["presets"]["tiny"]["datasets"]["davis"]["embedded"]
    return [s.name for s in emb.sequence_specs(emb.EmbeddedDavisConfig(**cfg)) if s.split == "val"]


def test_table_6_2_cells_from_hand_made_metric_files(tmp_path):
    """Merge (per pool) -> mean over sequences -> table cell, on raw metric files with known numbers."""
    seqs = _tiny_val_sequences()
    assert len(seqs) == 3
    sifid, lpips = [0.10, 0.20, 0.60], [0.30, 0.40, 0.50]
    miou = [0.80, None, 0.60]  # a pool whose mIoU is undefined is left out of the mean
    base = tmp_path / "results" / "tiny" / "metrics" / "osmis_synthesis" / "default" / "davis2017"
    for seq, s, l, m in zip(seqs, sifid, lpips, miou):
        raw = base / "per_sequence" / seq / "seed0" / "raw"
        raw.mkdir(parents=True)
        (raw / "sifid.json").write_text(json.dumps(
            {"value": {"mean_sifid_64": s, "best_sifid_64": s / 2}, "weights_label": "random-init(seed=0)"}))
        (raw / "lpips.json").write_text(json.dumps({"value": l, "weights_label": "random-init(seed=0)"}))
        (raw / "mask_alignment.json").write_text(json.dumps(
            {"value": 0.5, "details": {"miou": m, "thresholded_iou": 0.5, "pixel_accuracy": 0.9,
                                       "weights_label": "random-init(seed=0)", "n_fakes": 12}}))
    out = tmp_path / "results" / "tiny" / "tables" / "table_6_2.csv"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--nolock", "--allowed-rules",
           "synthesis_pool_metrics", "synthesis_average", "tabulate", "--config", "preset=tiny",
           f"results_dir={tmp_path}/results", "--", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    avg = json.loads((base / "seed0.json").read_text())
    assert avg["sifid"] == pytest.approx(0.30) and avg["lpips"] == pytest.approx(0.40)
    assert avg["miou"] == pytest.approx(0.70) and avg["n_per_metric"]["miou"] == 2
    assert avg["miou_thresholded"] == pytest.approx(0.5)
    assert "random-init" in avg["provenance"]["weights_label"] and avg["provenance"]["config_hash"]
    import pandas as pd

    df = pd.read_csv(out, comment="#").set_index(["row", "column"])
    assert df.at[("osmis", "sifid"), "ours_mean"] == pytest.approx(0.30)
    assert df.at[("osmis", "lpips"), "ours_mean"] == pytest.approx(0.40)
    assert df.at[("osmis", "miou"), "ours_mean"] == pytest.approx(70.0)          # mIoU in percent
    assert df.at[("osmis", "miou"), "diff"] == pytest.approx(70.0 - 86.6)         # thesis Table 6.2: 86.6
    assert str(df.at[("semanticgan", "sifid"), "status"]).startswith("not built yet")


def test_table_6_1_sivgan_row_trains_without_the_mask(tmp_path):
    """Table 6.1's SIV-GAN row: a mask-free variant (no --mask, no mask-alignment job), beside OSMIS."""
    res = snakemake_dry("table_6_1", "-p", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    n_seq = counts["train_osmis"] // 2                       # sivgan + default per DAVIS-17 val sequence
    assert n_seq >= 1 and counts["synthesis_mask_alignment"] == n_seq   # only OSMIS' pools have masks
    train_cmds = [ln for ln in res.stdout.splitlines() if "osmis_cli train" in ln]
    sivgan = [c for c in train_cmds if "/train/osmis/sivgan/" in c]
    osmis = [c for c in train_cmds if "/train/osmis/default/" in c]
    assert len(sivgan) == len(osmis) == n_seq
    assert all("--mask" not in c for c in sivgan) and all("--mask" in c for c in osmis)
