"""Merging and averaging of the OSMIS synthesis metrics (Tables 6.1-6.4)."""
import json

import pytest

from gan_core.errors import DataError
from gan_core.report import synthesis


def _raw(tmp_path, name, sifid, lpips, miou, thr):
    d = tmp_path / name
    d.mkdir()
    (d / "sifid.json").write_text(json.dumps({"value": {"mean_sifid_64": sifid}, "weights_label": "random-init(seed=0)"}))
    (d / "lpips.json").write_text(json.dumps({"value": lpips, "weights_label": "random-init(seed=0)"}))
    (d / "mask.json").write_text(json.dumps({"value": thr, "details": {"miou": miou, "thresholded_iou": thr,
                                                                         "n_fakes": 10}}))
    return d


def test_merge_then_average(tmp_path):
    prov = {"config_hash": "abc", "seed": 0}
    recs = []
    for i, (s, l, m, t) in enumerate([(0.2, 0.4, 0.8, 0.6), (0.4, 0.2, None, None)]):
        d = _raw(tmp_path, f"p{i}", s, l, m, t)
        recs.append(synthesis.merge_pool_metrics(d / "sifid.json", d / "lpips.json", d / "mask.json",
                                                 tmp_path / f"pool{i}.json", prov))
    assert recs[0]["sifid"] == 0.2 and recs[0]["miou"] == 0.8 and recs[1]["miou"] is None
    assert "random-init" in recs[0]["provenance"]["weights_label"]
    avg = synthesis.average_over_sequences([tmp_path / "pool0.json", tmp_path / "pool1.json"], ["a", "b"],
                                           tmp_path / "avg.json", prov)
    assert avg["sifid"] == pytest.approx(0.3) and avg["lpips"] == pytest.approx(0.3)
    assert avg["miou"] == pytest.approx(0.8)  # the missing value is left out, not counted as 0
    assert avg["n_per_metric"]["miou"] == 1 and avg["n_per_metric"]["sifid"] == 2
    assert json.loads((tmp_path / "avg.json").read_text())["per_sequence"]["b"]["miou"] is None


def test_missing_layer_and_bad_file_name_the_file(tmp_path):
    d = _raw(tmp_path, "p", 0.1, 0.1, 0.5, 0.5)
    (d / "sifid.json").write_text(json.dumps({"value": {"mean_sifid_192": 1.0}}))
    with pytest.raises(DataError, match="sifid.json"):
        synthesis.merge_pool_metrics(d / "sifid.json", d / "lpips.json", d / "mask.json", tmp_path / "o.json", {})
    (d / "lpips.json").write_text("{broken")
    with pytest.raises(DataError, match="lpips.json"):
        synthesis.read_metric_file(d / "lpips.json")
