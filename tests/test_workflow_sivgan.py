"""SIV-GAN Chapter-5 tables (5.1-5.6) and Fig. 5.6: dry-run plans per preset, the merge / average
helpers on hand-made metric files, and (slow) one real tiny end-to-end table."""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from workflow_dryrun import REPO, job_counts, snakemake_dry

# tiny: embedded data = 2 "Places" images, 1 video (datasets.single_image.embedded)
# settings per table: image (I) and/or video (V); rows -> distinct variants
TINY_TRAIN = {
    "table_5_1": 1 * (2 + 1),   # SIV-GAN, Single Image on Places (2) and on the video's middle frame (1)
    "table_5_2": 1 * 1,         # SIV-GAN, Single Video
    "table_5_3": 7 * (1 + 1),   # 7 ablation rows, image + video
    "table_5_4": 5 * 1,         # 5 regularisations, image
    "table_5_5": 4 * 1,         # 4 lambdas (0.00 = the No DR model), image
    "table_5_6": 6 * (1 + 1),   # N_low-level 1..6, image + video
}
# paper: 50 Places images, 15 videos
PAPER_TRAIN = {"table_5_1": 50 + 15, "table_5_2": 15, "table_5_3": 7 * 30, "table_5_4": 5 * 15,
               "table_5_5": 4 * 15, "table_5_6": 6 * 30}


@pytest.mark.parametrize("table", sorted(TINY_TRAIN))
def test_tiny_tables_plan_one_model_per_item_and_variant(tmp_path, table):
    res = snakemake_dry(table, "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    n = TINY_TRAIN[table]
    for rule in ("train_sivgan", "sample_sivgan", "sivgan_metrics", "sivgan_pool_metrics"):
        assert counts[rule] == n, (rule, counts)
    assert counts["tabulate"] == 1 and counts["sivgan_embedded_data"] == 1
    assert not any(k.startswith("fetch_") for k in counts)  # tiny: embedded data, random-init networks


def _fake_resources(res):
    places = res / "places50_singan"
    places.mkdir(parents=True)
    for i in range(50):
        (places / f"places_{i:02d}.jpg").write_bytes(b"")
    (res / "davis2017_trainval_480p").mkdir()
    (res / "davis2017_trainval_480p" / ".complete").write_text("test marker\n")


def test_paper_tables_plan_thesis_scale(tmp_path):
    res = tmp_path / "resources"
    _fake_resources(res)
    # all six tables at once: models shared between tables are planned once
    out = snakemake_dry(*PAPER_TRAIN, "--config", "preset=paper", f"resources_dir={res}",
                        f"results_dir={tmp_path}/results")
    assert out.returncode == 0, out.stderr[-3000:]
    counts = job_counts(out.stdout)
    image_davis_variants = 17   # distinct variants of the Single Image columns on the videos (5.1, 5.3-5.6)
    video_variants = 12         # distinct variants of the Single Video columns (5.2, 5.3, 5.6)
    assert counts["train_sivgan"] == 50 + 15 * image_davis_variants + 15 * video_variants, counts
    assert counts["tabulate"] == 6
    for entry in ("tv_inception_v3", "tv_alexnet"):
        assert counts[f"fetch_{entry}"] == 1, counts
    # per table, e.g. Table 5.2: one model per video on all frames, 300k iterations (thesis l.1468)
    out = snakemake_dry("table_5_2", "-p", "--config", "preset=paper", f"resources_dir={res}",
                        f"results_dir={tmp_path}/results")
    assert out.returncode == 0, out.stderr[-3000:]
    assert job_counts(out.stdout)["train_sivgan"] == PAPER_TRAIN["table_5_2"]
    assert '"iterations":300000' in out.stdout and '"n_low_level":3' in out.stdout
    assert re.search(r"--images \S+/data/single/davis/bear/video/frames", out.stdout)


def test_paper_without_places_names_the_manual_entry(tmp_path):
    res = snakemake_dry("table_5_1", "--config", "preset=paper", f"resources_dir={tmp_path}/none",
                        f"results_dir={tmp_path}/results")
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "places50_singan" in text and "Manual download" in text


def test_figure_5_6_tiny_plans_one_model_per_skip_and_paper_says_why_not(tmp_path):
    res = snakemake_dry("figure_5_6", "--config", "preset=tiny", f"results_dir={tmp_path}/results")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    skips = yaml.safe_load((REPO / "config.yaml").read_text())["presets"]["tiny"]["models"]["sivgan"][
        "figure_5_6"]["skips"]
    assert counts["train_sivgan"] == len(skips) and counts["sivgan_video"] == len(skips)
    assert counts["figure_5_6"] == 1
    res = snakemake_dry("figure_5_6", "--config", "preset=paper", f"results_dir={tmp_path}/results")
    assert res.returncode != 0 and "YFCC100M" in res.stdout + res.stderr


def test_merge_and_average_sivgan_pools(tmp_path):
    from gan_core.report import synthesis as syn

    def metric(name, value):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"metric": name, "value": value, "weights_label": "random-init(seed=0)",
                                 "details": {"per_sample": {"0.png": 1, "1.png": 2}}}))
        return p

    layers = {"sifid_4": 0, "sifid_16": 1}
    files = {"sifid": metric("sifid", {"mean_sifid_64": 0.5, "best_sifid_64": 0.1, "mean_sifid_192": 7.0,
                                       "best_sifid_192": 3.0}),
             "lpips": metric("lpips", 0.3), "dist_train": metric("dist", 0.2), "pixel_div": metric("pix", 0.6)}
    a = syn.merge_sivgan_pool_metrics(files, layers, tmp_path / "a.json", {"seed": 0})
    assert (a["sifid_4"], a["best_sifid_4"], a["sifid_16"], a["lpips"], a["pixel_div"], a["dist_train"]) == \
        (0.5, 0.1, 7.0, 0.3, 0.6, 0.2)
    files2 = dict(files, sifid=metric("sifid2", {"mean_sifid_64": 1.5, "best_sifid_64": 0.3,
                                                 "mean_sifid_192": 9.0, "best_sifid_192": 5.0}))
    del files2["pixel_div"]  # a video pool has no pixel diversity
    syn.merge_sivgan_pool_metrics(files2, layers, tmp_path / "b.json", {"seed": 0})
    avg = syn.average_over_sequences([tmp_path / "a.json", tmp_path / "b.json"], ["a", "b"], tmp_path / "m.json",
                                     {"seed": 0}, keys=syn.sivgan_keys(layers))
    assert avg["sifid_4"] == pytest.approx(1.0) and avg["sifid_16"] == pytest.approx(8.0)
    assert avg["pixel_div"] == pytest.approx(0.6) and avg["n_per_metric"]["pixel_div"] == 1
    bad = metric("bad", {"mean_sifid_64": 1.0})
    from gan_core.errors import DataError
    with pytest.raises(DataError, match=r"bad\.json.*best_sifid_64"):
        syn.merge_sivgan_pool_metrics(dict(files, sifid=bad), layers, tmp_path / "c.json", {})


@pytest.mark.slow
def test_tiny_table_5_5_end_to_end(tmp_path):
    """A real tiny run of Table 5.5 (4 SIV-GAN models, metrics, table) in < 4 min on 2 cores."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "table_5_5", "--config", "preset=tiny",
           f"results_dir={tmp_path}"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stderr[-4000:]
    md = (tmp_path / "tiny" / "tables" / "table_5_5.md").read_text()
    assert "TINY" in md.upper()
    csv = (tmp_path / "tiny" / "tables" / "table_5_5.csv").read_text()
    assert "lambda_0_05" in csv
    avg = json.loads((tmp_path / "tiny" / "metrics" / "sivgan" / "default" / "image" / "davis" /
                      "seed0.json").read_text())
    for key in ("sifid_4", "sifid_16", "lpips", "pixel_div", "dist_train"):
        assert isinstance(avg[key], float) and avg[key] >= 0, key
    assert avg["lpips"] > 0  # samples differ from each other
