"""Structure and spot checks of workflow/thesis_tables.yaml (the transcribed thesis tables).

The values themselves were checked against the thesis text when transcribing (every printed number
found on its row's line inside the cited line range); this test does not read the thesis, it guards
the file's structure and a few hand-checked cells (thesis line numbers in the comments).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

PATH = Path(__file__).resolve().parents[1] / "workflow" / "thesis_tables.yaml"
KINDS = {"experiment", "baseline", "cited"}
EXPECTED_IDS = (
    {f"table_4_{i}" for i in range(1, 12)}
    | {f"table_5_{i}" for i in range(1, 8)}
    | {f"table_6_{i}" for i in range(1, 9)}
    | {f"table_7_{i}" for i in range(1, 7)}
)
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def tables() -> dict:
    with open(PATH, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def _is_number_or_null(v) -> bool:
    if v is None:
        return True
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def test_header_comment():
    first = PATH.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# Transcribed from the thesis text")


def test_all_chapter_tables_present(tables):
    assert EXPECTED_IDS <= set(tables), sorted(EXPECTED_IDS - set(tables))
    assert set(tables) - EXPECTED_IDS <= {"appendix_10", "appendix_12"}


def test_table_ids_match_numbers(tables):
    for tid, t in tables.items():
        if tid.startswith("table_"):
            assert t["number"] == tid[len("table_"):].replace("_", "."), tid
            assert t["chapter"] == int(t["number"].split(".")[0]), tid


@pytest.mark.parametrize("tid", sorted(EXPECTED_IDS | {"appendix_10", "appendix_12"}))
def test_table_structure(tables, tid):
    if tid not in tables:
        pytest.skip("optional appendix table absent")
    t = tables[tid]
    for key in ("number", "caption", "thesis_lines", "columns", "rows", "seeds", "seeds_note"):
        assert key in t, f"{tid}: missing {key}"
    assert isinstance(t["number"], str) and isinstance(t["caption"], str) and t["caption"]
    lo, hi = t["thesis_lines"]
    assert isinstance(lo, int) and isinstance(hi, int) and 0 < lo <= hi, tid
    assert t["seeds"] is None or (isinstance(t["seeds"], int) and t["seeds"] > 0)

    col_ids = [c["id"] for c in t["columns"]]
    assert col_ids and len(col_ids) == len(set(col_ids)), f"{tid}: duplicate column ids"
    for c in t["columns"]:
        assert SNAKE.match(c["id"]), c["id"]
        assert c.get("label") and c.get("metric"), f"{tid}/{c['id']}"
        assert isinstance(c.get("higher_is_better"), bool), f"{tid}/{c['id']}"

    rows = t["rows"]
    assert isinstance(rows, list)
    if not rows:
        assert t.get("note"), f"{tid}: a table without rows must explain why in a note"
    row_ids = [r["id"] for r in rows]
    assert len(row_ids) == len(set(row_ids)), f"{tid}: duplicate row ids"
    for r in rows:
        where = f"{tid}/{r['id']}"
        assert SNAKE.match(r["id"]), where
        assert r.get("label"), where
        assert r["kind"] in KINDS, where
        assert isinstance(r.get("system"), str) and r["system"], where
        assert isinstance(r.get("settings", {}), dict), where
        assert isinstance(r.get("thesis"), dict), where
        for field in ("thesis", "thesis_std", "reported"):
            cells = r.get(field)
            if cells is None:
                continue
            assert set(cells) <= set(col_ids), f"{where}: {field} keys {set(cells) - set(col_ids)}"
            for col, v in cells.items():
                assert _is_number_or_null(v), f"{where}/{field}/{col}: {v!r}"
        # a row carries at least one printed number
        assert any(v is not None for v in r["thesis"].values()), where
        if r["kind"] == "cited":
            assert r.get("source"), f"{where}: cited row needs its source"
        for col, sd in (r.get("thesis_std") or {}).items():
            assert sd is None or sd >= 0, where


def test_fid_like_metrics_are_lower_is_better(tables):
    for tid, t in tables.items():
        for c in t["columns"]:
            m = c["metric"].upper()
            if m in {"FID", "SIFID", "MS-SSIM"}:
                assert c["higher_is_better"] is False, f"{tid}/{c['id']}"
            if m in {"MIOU", "LPIPS", "J&F", "INTRA-LPIPS"}:
                assert c["higher_is_better"] is True, f"{tid}/{c['id']}"


def _row(tables, tid, rid):
    return {r["id"]: r for r in tables[tid]["rows"]}[rid]


def test_spot_values(tables):
    # thesis l.1851: OSVOS, no augmentation: 76.9 / 51.3
    r = _row(tables, "table_6_5", "osvos_none")
    assert r["thesis"] == {"davis16": 76.9, "davis17": 51.3}
    assert r["settings"] == {"standard_aug": False, "synthetic_aug": False}
    # thesis l.1852: "78.5 (80.2)  52.9 (52.8)" -> reported numbers in brackets
    r = _row(tables, "table_6_5", "osvos_standard")
    assert r["thesis"]["davis16"] == 78.5 and r["reported"] == {"davis16": 80.2, "davis17": 52.8}
    assert tables["table_6_5"]["seeds"] == 5 and tables["table_6_6"]["seeds"] == 5
    # thesis l.1864: RePRI reported 31.2 38.1 33.3 33.0
    assert _row(tables, "table_6_6", "repri_none")["reported"] == {
        "coco0": 31.2, "coco1": 38.1, "coco2": 33.3, "coco3": 33.0}
    # thesis l.1891: "78.5 (+0.0) \pm 0.3  31.2 (+0.0) \pm 0.1"
    r = _row(tables, "table_6_8", "reference")
    assert r["thesis"] == {"osvos_davis16": 78.5, "repri_coco0": 31.2}
    assert r["thesis_std"] == {"osvos_davis16": 0.3, "repri_coco0": 0.1}
    # thesis l.1803: mIoU "-" for no mask supervision; l.1828 OSMIS default 0.073 / 0.387 / 86.6
    assert _row(tables, "table_6_3", "none")["thesis"]["miou"] is None
    assert _row(tables, "table_6_4", "n_low_level_4")["thesis"] == {"sifid": 0.073, "lpips": 0.387, "miou": 86.6}
    # thesis l.1140: OASIS, Table 4.1
    assert _row(tables, "table_4_1", "oasis")["thesis"]["cocostuff_fid"] == 17.0
    # thesis l.1130: SIMS ADE20K n/a
    assert _row(tables, "table_4_1", "sims")["thesis"]["ade20k_fid"] is None
    # thesis l.2036: Ours, Horse->Pokemons 84.1 / 0.61
    r = _row(tables, "table_7_1", "ours")
    assert (r["thesis"]["pokemons_fid"], r["thesis"]["pokemons_lpips"]) == (84.1, 0.61)
    # thesis l.1278: SPADE gain on classes 9-12 printed "-1.1"
    assert _row(tables, "table_4_7", "spade")["thesis"]["classes_9_12_rel"] == -1.1


def test_row_groups(tables):
    # Table 6.4: N_low-level = 1..5 (thesis l.1825-1829)
    rows = tables["table_6_4"]["rows"]
    assert [r["settings"]["n_low_level"] for r in rows] == [1, 2, 3, 4, 5]
    # Table 5.6: N_low-level = 1..6 (thesis l.1602-1607)
    assert [r["settings"]["n_low_level"] for r in tables["table_5_6"]["rows"]] == [1, 2, 3, 4, 5, 6]
    # Table 6.5: two networks x four augmentation settings
    rows = tables["table_6_5"]["rows"]
    assert len(rows) == 8 and {r["system"] for r in rows} == {"osvos", "stm"}
    # Table 6.8: every row after the reference has a ± std in both columns
    for r in tables["table_6_8"]["rows"]:
        assert set(r["thesis_std"]) == {"osvos_davis16", "repri_coco0"}
    # Table 4.1: all rows except OASIS and the two SPADE+ rows are literature numbers (thesis l.1153)
    kinds = {r["id"]: r["kind"] for r in tables["table_4_1"]["rows"]}
    assert kinds["oasis"] == "experiment"
    assert kinds["spade_plus_vgg"] == kinds["spade_plus_novgg"] == "baseline"
    assert sum(k == "cited" for k in kinds.values()) == 8


def test_config_wiring_refers_to_existing_ids(tables):
    """Rows and columns wired in config.yaml's `tables:` section exist in the transcription."""
    cfg_path = PATH.parents[1] / "config.yaml"
    if not cfg_path.exists():
        pytest.skip("config.yaml not present")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    for tid, wiring in (cfg.get("tables") or {}).items():
        assert tid in tables, tid
        t = tables[tid]
        assert set(wiring.get("columns", {})) <= {c["id"] for c in t["columns"]}, tid
        # rows not in the thesis table are allowed (added ablation rows), but thesis-wired rows must match
        thesis_rows = {r["id"] for r in t["rows"]}
        for rid in wiring.get("rows", {}):
            if rid.startswith(("osvos_", "stm_", "repri_")) and tid in {"table_6_5", "table_6_6"}:
                assert rid in thesis_rows, f"{tid}/{rid}"
