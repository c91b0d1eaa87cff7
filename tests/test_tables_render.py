"""Table rendering: ours (mean +- std over seeds) | thesis | difference, honest statuses."""
import json
import math

import pandas as pd
import pytest

from gan_core.errors import DataError
from gan_core.report import tables

THESIS = {
    "number": "9.9",
    "caption": "Test table",
    "thesis_lines": [1, 2],
    "columns": [{"id": "a", "label": "A", "metric": "J&F"}, {"id": "b", "label": "B", "metric": "J&F"}],
    "rows": [
        {"id": "osvos_none", "label": "OSVOS none", "kind": "experiment", "system": "osvos",
         "thesis": {"a": 76.9, "b": 51.3}},
        {"id": "stm_none", "label": "STM none", "kind": "experiment", "system": "stm",
         "thesis": {"a": 89.7, "b": 72.4}, "reported": {"a": 89.4, "b": 72.2}},
        {"id": "lit", "label": "Literature", "kind": "cited", "source": "Someone 2020",
         "thesis": {"a": 1.0, "b": None}},
    ],
}


def _metric(tmp_path, name, value, seed):
    p = tmp_path / f"{name}_{seed}.json"
    p.write_text(json.dumps({"J&F": value, "provenance": {"config_hash": "abc", "git_commit": "c0", "seed": seed}}))
    return {"file": str(p), "key": "J&F", "seed": seed}


def _plan(tmp_path, preset="tiny"):
    return {
        "preset": preset,
        "not_built": {"stm": "STM comes later"},
        "rows": {
            "osvos_none": {"cells": {
                "a": [_metric(tmp_path, "a", 0.70, 0), _metric(tmp_path, "a", 0.80, 1)],
                "b": [_metric(tmp_path, "b", 0.50, 0), _metric(tmp_path, "b", 0.54, 1)],
            }},
            "my_ablation": {"label": "OSVOS new switch", "cells": {"a": [_metric(tmp_path, "c", 0.9, 0)]}},
        },
    }


def test_mean_std_and_difference(tmp_path):
    plan = _plan(tmp_path)
    for row in plan["rows"].values():
        for entries in row["cells"].values():
            for e in entries:
                e["scale"] = 100.0
    df = tables.build_rows("table_9_9", THESIS, plan, tables.collect(plan))
    a = df[(df.row == "osvos_none") & (df.column == "a")].iloc[0]
    assert a.ours_mean == pytest.approx(75.0)
    assert a.ours_std == pytest.approx(pd.Series([70.0, 80.0]).std())  # sample std, second source: pandas
    assert a["diff"] == pytest.approx(75.0 - 76.9)
    assert a.n_seeds == 2 and a.seeds == "0,1"


def test_unbuilt_and_cited_rows_have_no_number(tmp_path):
    plan = _plan(tmp_path)
    df = tables.build_rows("table_9_9", THESIS, plan, tables.collect(plan))
    stm = df[df.row == "stm_none"]
    assert stm.ours_mean.isna().all()
    assert all(s.startswith("not built yet: STM comes later") for s in stm.status)
    lit = df[df.row == "lit"]
    assert lit.ours_mean.isna().all() and all("cited" in s for s in lit.status)


def test_added_ablation_row_appears_without_thesis_value(tmp_path):
    plan = _plan(tmp_path)
    df = tables.build_rows("table_9_9", THESIS, plan, tables.collect(plan))
    row = df[(df.row == "my_ablation") & (df.column == "a")].iloc[0]
    assert row.ours_mean == pytest.approx(0.9) and pd.isna(row.thesis) and pd.isna(row["diff"])
    assert row.label == "OSVOS new switch"


def test_rendered_files_carry_the_tiny_banner_and_provenance(tmp_path):
    plan = _plan(tmp_path)
    tables.render("table_9_9", THESIS, plan, tmp_path / "t.csv", tmp_path / "t.md")
    md = (tmp_path / "t.md").read_text()
    csv = (tmp_path / "t.csv").read_text()
    assert "TINY PRESET" in md and "NOT the thesis" in md
    assert csv.startswith("# TINY PRESET")
    assert "76.90" in md and "(89.40)" in md  # thesis and reported values
    assert "abc" in md  # config hash
    df = pd.read_csv(tmp_path / "t.csv", comment="#")
    assert set(df.columns) >= {"ours_mean", "ours_std", "thesis", "diff", "config_hashes", "git_commits", "seeds"}


def test_missing_or_bad_metric_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.json"):
        tables.read_metric(tmp_path / "missing.json", "J&F")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        tables.read_metric(bad, "J&F")
    nan = tmp_path / "str.json"
    nan.write_text(json.dumps({"J&F": "high"}))
    with pytest.raises(DataError, match="not a number"):
        tables.read_metric(nan, "J&F")


def test_cell_not_built_is_reported_never_a_number(tmp_path):
    plan = _plan(tmp_path)
    plan["rows"]["osvos_none"]["cells"]["b"] = [{"not_built": "segmenter X not implemented"},
                                                {"not_built": "segmenter X not implemented"}]
    df = tables.build_rows("table_9_9", THESIS, plan, tables.collect(plan))
    b = df[(df.row == "osvos_none") & (df.column == "b")].iloc[0]
    assert b.status == "not built yet: segmenter X not implemented"
    assert b.ours_mean is None or math.isnan(b.ours_mean)
    a = df[(df.row == "osvos_none") & (df.column == "a")].iloc[0]
    assert a.status.startswith("computed")
    md = tables.to_markdown(df, THESIS, "tiny")
    assert "not built yet: segmenter X not implemented" in md


def test_cell_without_thesis_value_and_without_wiring_is_blank(tmp_path):
    """A wired row with no cell where the thesis has no value either (e.g. a gain over itself) is not applicable:
    empty status; with a thesis value the same gap says 'no cell wired'."""
    thesis = {**THESIS, "rows": [{"id": "r", "label": "R", "kind": "experiment", "thesis": {"a": 1.0, "b": None}}]}
    plan = {"preset": "tiny", "rows": {"r": {"cells": {"a": [], "b": []}}}}
    df = tables.build_rows("table_9_9", thesis, plan, tables.collect(plan))
    status = dict(zip(df.column, df.status))
    assert status == {"a": "no cell wired for this column", "b": ""}
