"""OASIS tables in the workflow (Table 4.1 and the Chapter-4 ablations 4.2, 4.4, 4.8-4.11, appendix 10 / 12): dry
runs of the tiny and paper presets, and one real tiny run of Table 4.8 (slow)."""
import csv
import json
import os
import subprocess
import sys

import pytest

from workflow_dryrun import REPO, job_counts, snakemake_dry


def test_tiny_table_4_1_is_planned(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    # four datasets (tiny: the synthetic scenes in each folder layout), each built, exported (train / val) and
    # with its stand-in segmenter
    assert counts.get("embedded_semantic") == 4 and counts.get("oasis_segmenter") == 4, counts
    assert counts.get("semantic_split") == 8 and counts.get("tabulate") == 1, counts
    # OASIS + the two SPADE+ rows (our re-implementation, with / without VGG) on each dataset
    for rule in ("train_oasis", "sample_oasis", "oasis_fid", "oasis_miou_raw", "oasis_miou"):
        assert counts.get(rule) == 12, (rule, counts)
    assert not any(r.startswith("fetch_") for r in counts)  # tiny: nothing downloads (random VGG19 / Inception)


def test_paper_table_4_1_plans_downloads_and_says_what_is_manual(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=paper", f"resources_dir={tmp_path}/res",
                        f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts.get("fetch_ade20k") == 1 and counts.get("fetch_fid_inception") == 1
    assert counts.get("fetch_tv_vgg19") == 1  # SPADE+ with VGG trains with the manifest VGG19
    for name in ("cocostuff_stuffthingmaps", "coco2017_train_images", "coco2017_val_images",
                 "upernet101_ade20k_encoder", "upernet101_ade20k_decoder"):
        assert counts.get(f"fetch_{name}") == 1, (name, counts)
    # ADE20K and COCO-Stuff are planned; Cityscapes (manual, not placed) and ADE20K-outdoor (no list) are not
    assert counts.get("train_oasis") == 6 and counts.get("oasis_fid") == 6 and counts.get("oasis_miou") == 6
    assert "oasis_segmenter" not in counts and "embedded_semantic" not in counts  # the thesis' segmenters


def test_paper_cells_of_missing_manual_data_say_what_to_fetch(tmp_path):
    """Paper preset, nothing downloaded: Table 4.11 (Cityscapes only) plans no training and renders every cell
    as "not built yet" with the manual-download instructions -- the table is written, nothing fails."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "table_4_11", "--config", "preset=paper",
           f"resources_dir={tmp_path}/res", f"results_dir={tmp_path}/results"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (tmp_path / "results" / "paper" / "tables" / "table_4_11.csv").read_text().splitlines()
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))  # first line: preset banner
    assert len(rows) == 6 and all(r["ours_mean"] == "" for r in rows)
    assert all("manual download missing" in r["status"] and "cityscapes-dataset.com" in r["status"] for r in rows)


def _wired_jobs(table):
    """Distinct (models.oasis variant, dataset) pairs a table's wiring trains in the tiny preset (LVIS: none)."""
    import yaml

    wiring = yaml.safe_load((REPO / "config.yaml").read_text())["tables"][table]
    out = set()
    for col in wiring["columns"].values():
        if col.get("dataset") == "lvis" or col["metric"].startswith("lvis_"):
            continue
        for row in wiring["rows"].values():
            out.add((row["oasis_variant_vgg"] if col.get("vgg") else row.get("oasis_variant", "default"),
                     col["dataset"]))
    return out


# table -> (distinct (variant, dataset) models trained, diversity tables sample K images per label map)
ABLATIONS = {"table_4_2": (5, True), "table_4_4": (3, False), "table_4_8": (6, False), "table_4_9": (8, False),
             "table_4_10": (8, False), "table_4_11": (3, False), "appendix_10": (8, True), "appendix_12": (8, False)}


@pytest.mark.parametrize("table", sorted(ABLATIONS))
def test_tiny_ablation_tables_are_planned(tmp_path, table):
    n_models, diversity = ABLATIONS[table]
    assert len(_wired_jobs(table)) == n_models
    res = snakemake_dry(table, "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts.get("train_oasis", 0) == n_models, counts
    assert counts.get("tabulate") == 1
    assert counts.get("sample_oasis") == n_models and counts.get("oasis_miou") == n_models
    assert counts.get("sample_oasis_multi", 0) == (n_models if diversity else 0)
    assert counts.get("oasis_ms_ssim", 0) == (n_models if diversity else 0)
    assert counts.get("oasis_lpips", 0) == (n_models if table == "table_4_2" else 0)
    assert not any(r.startswith("fetch_") for r in counts)


def test_paper_ablation_uses_torchrun_and_the_vgg_manifest_entry(tmp_path):
    res = snakemake_dry("-p", "table_4_8", "--config", "preset=paper", f"resources_dir={tmp_path}/res",
                        f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts.get("fetch_tv_vgg19") == 1 and counts.get("train_oasis") == 6
    trains = [ln for ln in res.stdout.splitlines() if "oasis_cli train" in ln]
    assert trains and all("torch.distributed.run --standalone --nproc_per_node=4" in ln for ln in trains)
    vgg = [ln for ln in trains if '"vgg_loss":true' in ln]
    assert len(vgg) == 1 and "vgg19-dcbb9e9d.pth" in vgg[0]
    assert all("--vgg-weights none" in ln for ln in trains if ln not in vgg)


def test_tiny_train_oasis_runs_one_process(tmp_path):
    res = snakemake_dry("-p", "table_4_8", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    trains = [ln for ln in res.stdout.splitlines() if "oasis_cli train" in ln]
    assert len(trains) == 6 and not any("torch.distributed.run" in ln for ln in trains)


def test_unknown_oasis_switch_in_a_variant_is_named(tmp_path):
    res = snakemake_dry("table_4_8", "--config", "preset=tiny", f"results_dir={tmp_path}/results",
                        "models={'oasis': {'variants': {'vgg': {'discriminator': 'stylegan'}}}}")
    assert res.returncode != 0
    assert "stylegan" in res.stdout + res.stderr


def test_unknown_oasis_param_is_named(tmp_path):
    res = snakemake_dry("table_4_1", "--config", "preset=tiny", f"results_dir={tmp_path}/results",
                        "models={'oasis': {'params': {'lr_gg': 1.0}}}")
    assert res.returncode != 0
    assert "lr_gg" in res.stdout + res.stderr


@pytest.mark.slow
def test_tiny_table_4_8_end_to_end(tmp_path):
    """Six ablation variants (SPADE+ included) trained, sampled and scored in the tiny preset (~2.5 min on 2
    cores); replaces the former Table 4.1 end-to-end test (Table 4.8 runs the same OASIS rules)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "table_4_8", "--config", "preset=tiny",
           f"results_dir={tmp_path}"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    md = (tmp_path / "tiny" / "tables" / "table_4_8.md").read_text()
    assert "TINY PRESET" in md and "our re-implementation" in md and "RANDOM VGG19" in md
    lines = (tmp_path / "tiny" / "tables" / "table_4_8.csv").read_text().splitlines()
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))  # first line: TINY banner
    assert lines[0].startswith("# TINY PRESET")
    cells = {(r["row"], r["column"]): r for r in rows}
    thesis = {("spade_plus_g_spade_plus_d", "fid"): 60.7, ("oasis_3dnoise_labelmix", "fid"): 28.3,
              ("oasis_3dnoise_labelmix_vgg", "miou"): 50.8}
    for key, value in thesis.items():
        cell = cells[key]
        assert cell["status"].startswith("computed"), cell
        ours = float(cell["ours_mean"])
        assert float(cell["thesis"]) == value and abs(float(cell["diff"]) - (ours - value)) < 1e-6
    for (row, col), cell in cells.items():
        assert cell["status"].startswith("computed"), (row, col, cell["status"])
        value = float(cell["ours_mean"])
        assert value > 0 if col == "fid" else 0 <= value <= 100
    assert len({cells[(r, "fid")]["ours_mean"] for r, _ in cells}) == 6  # six different models
    cfg = json.loads((tmp_path / "tiny" / "train" / "oasis" / "spade_plus_novgg" / "ade20k" / "seed0" /
                      "config.json").read_text())
    assert cfg["gan"]["generator"] == "spade_plus" and cfg["gan"]["discriminator"] == "ms_patchgan"


def test_tiny_synthetic_augmentation_tables_are_planned(tmp_path):
    """Tables 4.6 / 4.7: one DeepLab per (dataset, synthetic-data source), the generators sampled on the TRAIN
    split, gains computed against the run without synthetic data."""
    res = snakemake_dry("-p", "table_4_6", "table_4_7", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    # 4.6: none / SPADE+ / OASIS on Cityscapes and ADE20K; 4.7 reuses the three Cityscapes runs
    assert counts.get("deeplab_da_train") == 6 and counts.get("deeplab_da_evaluate") == 6, counts
    assert counts.get("train_oasis") == 4 and counts.get("sample_oasis") == 4, counts  # {spade_plus, default} x 2
    trains = [ln for ln in res.stdout.splitlines() if "deeplab_cli train" in ln]
    synthetic = [ln for ln in trains if "--synthetic none" not in ln]
    assert len(synthetic) == 4 and all("/training/images" in ln for ln in synthetic)
    assert all("/samples/oasis/" in ln.split("--synthetic ")[1] for ln in synthetic)
    assert not any(r.startswith("fetch_") for r in counts)


def test_paper_released_checkpoints_replace_training_of_the_oasis_rows(tmp_path):
    """--config oasis_checkpoints=released: the OASIS rows import the released generator (placed by hand) instead
    of training it; a dataset whose released file is not placed says so; SPADE+ rows still train."""
    res_dir = tmp_path / "res"
    ckpt = res_dir / "oasis_pretrained" / "oasis_ade20k_pretrained" / "models" / "best_EMA.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"placeholder: a dry run only checks that the file is there")
    res = snakemake_dry("-p", "table_4_1", "--config", "preset=paper", "oasis_checkpoints=released",
                        f"resources_dir={res_dir}", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts.get("import_released_oasis") == 1, counts          # ADE20K only (COCO-Stuff file not placed)
    assert counts.get("train_oasis") == 4, counts                    # SPADE+ with / without VGG x ADE20K, COCO-Stuff
    assert str(ckpt) in res.stdout and "oasis_cli import" in res.stdout
    assert not any("train/oasis/default/" in ln for ln in res.stdout.splitlines() if "oasis_cli train" in ln)
