# Tables and figures: generic rules expanded from the table declarations.
#
# Every thesis table has a target rule table_X_Y. A table whose rows are wired
# in config.yaml (tables.<id>) is computed; the others stop with a message that
# names what is not built yet -- never with a fake result.


def table_seeds(table_id):
    return CFG["tables"][table_id].get("seeds", CFG["seeds"]["downstream"])


def table_plan(table_id):
    """Which metric file holds each (row, column, seed) cell of a wired table.

    A builder returns {"file", "key", "seed", "scale"} for a computable cell, or {"not_built": reason}
    for a cell whose system does not exist yet (rendered as "not built yet: reason", never as a number), or
    None where the column does not apply to the row (e.g. a gain over itself; rendered without a value)."""
    wiring = CFG["tables"][table_id]
    builder = BUILDERS[wiring["builder"]]
    rows = {}
    for row_id, row in wiring["rows"].items():
        cells = {}
        for col_id, col in wiring["columns"].items():
            cells[col_id] = [c for c in (builder(row, col, seed) for seed in table_seeds(table_id)) if c is not None]
        rows[row_id] = {"label": row.get("label"), "cells": cells}
    note = " ".join(n for n in (wiring.get("note", ""), BUILDER_NOTES.get(wiring["builder"], "")) if n)
    return {"preset": PRESET, "rows": rows, "not_built": wiring.get("not_built", {}), "note": note}


def plan_files(table_id):
    plan = table_plan(table_id)
    return sorted({e["file"] for row in plan["rows"].values() for es in row["cells"].values() for e in es
                   if "file" in e})


def not_built_message(table_id):
    t = THESIS.get(table_id, {})
    systems = sorted({r.get("system") or "?" for r in t.get("rows", []) if r.get("kind") != "cited"})
    return (f"{table_id} (thesis Table {t.get('number', '?')}) is not built yet: no rows are wired in "
            f"config.yaml 'tables.{table_id}'. It needs: {', '.join(systems) or 'nothing computable'}. "
            "See README, 'Status of the thesis tables'.")


def table_outputs(table_id):
    if table_id not in CFG["tables"]:
        raise WorkflowError(not_built_message(table_id))
    outs = [f"{R}/tables/{table_id}.csv", f"{R}/tables/{table_id}.md"]
    outs += FIGURES.get(table_id, lambda: [])()
    return outs


rule tabulate:
    input:
        lambda wc: plan_files(wc.table),
    output:
        csv=f"{R}/tables/{{table}}.csv",
        md=f"{R}/tables/{{table}}.md",
    params:
        plan=lambda wc: as_json(table_plan(wc.table)),
    wildcard_constraints:
        table=r"table_\d+_\d+|appendix_\d+",
    log:
        f"{R}/logs/tabulate/{{table}}.log",
    shell:
        "{PY} -m gan_core.report.tables --table {wildcards.table} --plan {params.plan:q} "
        "--out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


# One target rule per thesis table (4.1-4.11, 5.1-5.7, 6.1-6.8, 7.1-7.6, appendix).
for _table_id in sorted(THESIS):

    rule:
        name:
            _table_id
        input:
            lambda wc, t=_table_id: table_outputs(t),


rule figures:
    # No output: always runs, re-rendering every figure from the result files that exist.
    params:
        spec=lambda wc: as_json({"figures": [f for fn in FIGURE_SPECS.values() for f in fn()]}),
    shell:
        "{PY} -m gan_core.report.figures {params.spec:q}"
