"""The Snakemake workflow plans every thesis table (or says what is missing) -- dry runs only."""
from concurrent.futures import ThreadPoolExecutor

import yaml

from workflow_dryrun import REPO, fake_davis, job_counts, snakemake_dry

THESIS_IDS = sorted(yaml.safe_load((REPO / "workflow" / "thesis_tables.yaml").read_text()))


def test_tiny_table_6_5_is_planned(tmp_path):
    res = snakemake_dry("table_6_5", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    # embedded val split: 2 single-object + 1 two-object sequences; DAVIS-16 uses the single-object ones
    assert counts["train_osmis"] == 2 + 3
    assert counts["osvos_finetune"] == 4 * 2 * (2 + 3)  # 4 augmentation settings x 2 seeds x sequences
    assert counts["stm_run"] == 4 * 2 * 2               # settings x seeds x years (all sequences per job)
    assert counts["davis_evaluate"] == 2 * 4 * 2 * 2    # systems x settings x seeds x years
    assert counts["stm_train_tiny"] == 1 and counts["osvos_parent"] == 1
    assert counts["tabulate"] == 1 and counts["embedded_davis"] == 1


def test_paper_table_6_5_plans_thesis_scale(tmp_path):
    res_dir = tmp_path / "resources"
    fake_davis(res_dir, 20, 30)
    res = snakemake_dry("table_6_5", "--config", "preset=paper", f"resources_dir={res_dir}",
                    f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["train_osmis"] == 20 + 30          # one OSMIS model per DAVIS-16 and DAVIS-17 val video
    assert counts["osvos_finetune"] == 4 * 5 * 50    # 4 augmentation settings x 5 seeds (thesis l.1847)
    assert counts["sifid_filter"] == 50
    assert counts["stm_run"] == 4 * 5 * 2
    assert counts["fetch_osvos_parent"] == 1 and counts["fetch_tv_inception_v3"] == 1
    assert counts["fetch_stm_weights"] == 1
    assert "osvos_parent" not in counts and "stm_train_tiny" not in counts  # official weights, not trained


def test_paper_without_dataset_names_the_fetch_target(tmp_path):
    res = snakemake_dry("table_6_5", "--config", "preset=paper", f"resources_dir={tmp_path}/empty",
                    f"results_dir={tmp_path}/results")
    assert res.returncode != 0
    assert "fetch_davis2017_trainval_480p" in res.stdout + res.stderr


def test_every_thesis_table_has_a_target(tmp_path):
    """Wired tables plan; every other table stops with a message naming what is not built yet."""
    assert {f"table_{a}_{b}" for a, n in ((4, 11), (5, 7), (6, 8), (7, 6)) for b in range(1, n + 1)} <= set(THESIS_IDS)
    wired = set(yaml.safe_load((REPO / "config.yaml").read_text())["tables"])
    assert "table_6_5" in wired

    def run(table_id):
        return table_id, snakemake_dry(table_id, "--config", "preset=tiny", f"results_dir={tmp_path}/results")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, [t for t in THESIS_IDS if t != "table_6_5"]))
    for table_id, res in results.items():
        out = res.stdout + res.stderr
        if table_id in wired:
            assert res.returncode == 0, f"{table_id} is wired but does not plan: {out[-2000:]}"
            continue
        assert res.returncode != 0, f"{table_id} planned although nothing is wired"
        assert f"{table_id} (thesis Table" in out and "is not built yet" in out, out[-2000:]
        assert "MissingRuleException" not in out


def test_misspelled_config_key_stops_the_workflow(tmp_path):
    res = snakemake_dry("table_6_5", "--config", "preset=tiny", "sampling={'nn': 3}")
    assert res.returncode != 0
    assert "nn" in res.stdout + res.stderr and "unknown key" in res.stdout + res.stderr


def test_readme_ablation_example_plans_only_the_new_jobs(tmp_path):
    """The README's worked example (a new OSMIS variant + a new table row) merges and plans."""
    extra = tmp_path / "my_ablation.yaml"
    extra.write_text(yaml.safe_dump({
        "models": {"osmis": {"variants": {"no_fa": {"feature_augmentation": False}}}},
        "tables": {"table_6_5": {"rows": {"osvos_both_nofa_drop25": {
            "label": "OSVOS, standard + synthetic (OSMIS w/o FA, drop 25 %)", "system": "osvos",
            "augmentation": "both", "osmis_variant": "no_fa", "selection": "sifid1234_drop25"}}}},
    }))
    base = snakemake_dry("table_6_5", "--configfile", str(extra), "--config", "preset=tiny",
                     f"results_dir={tmp_path}/results")
    assert base.returncode == 0, base.stderr[-3000:]
    counts = job_counts(base.stdout)
    assert counts["train_osmis"] == 2 * (2 + 3)            # default + no_fa variant for every sequence
    assert counts["osvos_finetune"] == (4 + 1) * 2 * (2 + 3)
    assert "no_fa/davis2017" in base.stdout and "sifid1234_drop25" in base.stdout


def _fake_test_dev(resources, n):
    d = resources / "davis2017_test_dev_480p" / "DAVIS" / "ImageSets" / "2017"
    d.mkdir(parents=True)
    (d / "test-dev.txt").write_text("\n".join(f"td{i:02d}" for i in range(n)) + "\n")
    (resources / "davis2017_test_dev_480p" / ".complete").write_text("test marker\n")


def test_davis17_test_dev_split_plans_submissions_not_scores(tmp_path):
    """datasets.davis.split_2017 = test-dev: OSMIS / OSVOS / STM run on the test-dev videos and their
    predictions are zipped for the evaluation server; the table's DAVIS-17 cells are 'not built' (no GT)."""
    res_dir = tmp_path / "resources"
    fake_davis(res_dir, 20, 30)
    _fake_test_dev(res_dir, 30)
    extra = tmp_path / "test_dev.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"davis": {"split_2017": "test-dev"}}}))
    common = ["--configfile", str(extra), "--config", "preset=paper", f"resources_dir={res_dir}",
              f"results_dir={tmp_path}/results"]
    res = snakemake_dry("davis17_test_dev_submissions", *common)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["davis_test_dev_submission"] == 2 * 4 * 5      # (OSVOS, STM) x 4 settings x 5 seeds
    assert counts["osvos_finetune"] == 4 * 5 * 30                # every test-dev video
    assert counts["train_osmis"] == 30                           # pools from the test-dev first frames
    assert "davis_evaluate" not in counts and "fetch_davis2017_test_dev_480p" not in counts
    assert "davis2017testdev/td00" in res.stdout

    res = snakemake_dry("table_6_5", *common)                    # only DAVIS-16 is scored locally
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["train_osmis"] == 20 and counts["osvos_finetune"] == 4 * 5 * 20

    plain = snakemake_dry("davis17_test_dev_submissions", "--config", "preset=paper", f"resources_dir={res_dir}",
                          f"results_dir={tmp_path}/results")
    assert plain.returncode != 0 and "split_2017: test-dev" in plain.stdout + plain.stderr


def test_qualitative_figures_plan_grids_and_interpolations(tmp_path):
    res = snakemake_dry("qualitative_figures", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["qualitative_osmis"] == 4 and counts["train_osmis"] == 2   # grid + interpolation, 2 pairs
