# OSVOS: parent network, online fine-tuning on frame 0 (with standard and/or
# synthetic augmentation), DAVIS J&F -- thesis Sec. 6.3.4-6.3.5, Table 6.5.

OSVOS = CFG["downstream"]["osvos"]


def osvos_parent_file():
    """The parent weights file used for fine-tuning."""
    if OSVOS["parent"] == "train":
        return f"{R}/downstream/osvos/parent/parent.pth"
    return resource_file(OSVOS["parent_fetch"], OSVOS["parent_file"])


def osvos_parent_input():
    """What fine-tuning waits for: our trained parent, or the verified official archive's marker."""
    if OSVOS["parent"] == "train":
        return osvos_parent_file()
    return resource_marker(OSVOS["parent_fetch"])


rule osvos_parent:
    # Tiny preset: a parent trained by the workflow on the embedded train split.
    # Paper preset: the official parent weights (fetched) are used instead.
    input:
        davis=DAVIS_INPUT,
    output:
        f"{R}/downstream/osvos/parent/parent.pth",
    params:
        out=f"{R}/downstream/osvos/parent",
        split=f"{DAVIS_ROOT}/ImageSets/2017/train.txt",
        cfg=as_json(OSVOS.get("parent_params", {})),
    log:
        f"{R}/logs/osvos_parent.log",
    benchmark:
        f"{R}/benchmarks/osvos_parent.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 24,
    shell:
        "{PY} -m downstream.osvos_cli parent --davis-root {DAVIS_ROOT} --split-file {params.split} "
        "--out {params.out} --params {params.cfg:q} --seed 0 --device {DEVICE} > {log} 2>&1"


def pool_manifest_for(pool, year, seq):
    """The filtered synthetic pool of one sequence that a run draws from ('real' = none)."""
    if pool == "real":
        return []
    variant, selection = pool.split("+")
    osmis_seed = CFG["seeds"]["osmis"][0]
    return [f"{R}/filtered/osmis/{variant}/davis{year}/{seq}/seed{osmis_seed}/{selection}/manifest.json"]


def pool_manifest(wc):
    return pool_manifest_for(wc.pool, wc.year, wc.seq)


def osvos_run_params(wc):
    params = dict(OSVOS.get("params", {}))
    params["standard_aug"] = wc.aug in ("standard", "both")
    params["synthetic"] = wc.aug in ("synthetic", "both")
    return params


rule osvos_finetune:
    input:
        davis=lambda wc: davis_input(wc.year),
        parent=osvos_parent_input(),
        pool=pool_manifest,
    output:
        f"{R}/downstream/osvos/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}/done.json",
    params:
        out=lambda wc: f"{R}/downstream/osvos/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}/{wc.seq}",
        pool=lambda wc, input: input.pool[0] if input.pool else "none",
        cfg=lambda wc: as_json(osvos_run_params(wc)),
        parent=osvos_parent_file(),
        root=lambda wc: davis_root(wc.year),
        mode=lambda wc: davis_mode(wc.year),
    log:
        f"{R}/logs/osvos_finetune/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}.log",
    benchmark:
        f"{R}/benchmarks/osvos_finetune/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 4,
    shell:
        "{PY} -m downstream.osvos_cli finetune --davis-root {params.root} --sequence {wildcards.seq} "
        "--mode {params.mode} --parent {params.parent} --synthetic-manifest {params.pool} "
        "--out {params.out} --params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} > {log} 2>&1"


def evaluate_inputs(wc):
    base = f"{R}/downstream/{wc.system}/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}"
    if wc.system == "stm":  # one job over all sequences
        return [f"{base}/done.json"]
    return [f"{base}/{seq}/done.json" for seq in val_sequences(wc.year)]


rule davis_evaluate:
    # DAVIS J&F (davis2017-evaluation conventions) of one (system, setting, pool, dataset, seed).
    # Not for test-dev (its ground truth is not public): see davis_test_dev_submission.
    input:
        evaluate_inputs,
    output:
        json=f"{R}/metrics/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.json",
        csv=f"{R}/metrics/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.csv",
    params:
        results=lambda wc: f"{R}/downstream/{wc.system}/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}",
        seqs=lambda wc: ",".join(val_sequences(wc.year)),
        root=lambda wc: davis_root(wc.year),
        mode=lambda wc: davis_mode(wc.year),
    log:
        f"{R}/logs/davis_evaluate/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/davis_evaluate/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.tsv"
    shell:
        "{PY} -m downstream.osvos_cli evaluate --davis-root {params.root} --results {params.results} "
        "--sequences {params.seqs} --mode {params.mode} --pred-subdir predictions "
        "--out {output.csv} --out-json {output.json} > {log} 2>&1"


def davis_cell_run(row, col):
    """(system, augmentation, pool, year wildcard) of a davis_vos cell; the DAVIS-17 column follows
    datasets.davis.split_2017 (year wildcard 2017 = val, 2017testdev = test-dev)."""
    aug = row["augmentation"]
    if aug in ("synthetic", "both"):
        pool = f"{row.get('osmis_variant', 'default')}+{row.get('selection', CFG['filtering']['default'])}"
    else:
        pool = "real"
    year = DAVIS17 if col["year"] == "2017" else col["year"]
    return row["system"], aug, pool, year


def test_dev_zip(system, aug, pool, seed):
    return f"{R}/submissions/{system}/{aug}/{pool}/davis2017testdev/seed{seed}.zip"


def davis_vos_cell(row, col, seed):
    """Builder 'davis_vos': row = system (osvos | stm) and augmentation setting, column = DAVIS year."""
    system, aug, pool, year = davis_cell_run(row, col)
    if year == "2017testdev":
        return {"not_built": "DAVIS-17 test-dev (datasets.davis.split_2017): its ground truth is not public; "
                             "run 'snakemake davis17_test_dev_submissions' and submit the zips (e.g. "
                             f"{test_dev_zip(system, aug, pool, seed)}) to the DAVIS evaluation server"}
    path = f"{R}/metrics/{system}/{aug}/{pool}/davis{year}/seed{seed}.json"
    return {"file": path, "key": "J&F", "seed": seed, "scale": 100.0}


rule davis_test_dev_submission:
    # DAVIS-17 test-dev: the predicted masks of one (system, setting, pool, seed) in the server's zip layout
    # (<sequence>/<frame>.png at the top level).
    localrule: True
    input:
        evaluate_inputs,
    output:
        f"{R}/submissions/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.zip",
    params:
        results=lambda wc: f"{R}/downstream/{wc.system}/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}",
        seqs=lambda wc: val_sequences(wc.year),
    wildcard_constraints:
        year="2017testdev",
    run:
        from gan_core.utils.atomic import atomic_path
        import zipfile

        with atomic_path(output[0]) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for seq in params.seqs:
                pred = Path(params.results, seq, "predictions")
                for png in sorted(pred.glob("*.png")):
                    zf.write(png, f"{seq}/{png.name}")


def test_dev_submissions():
    """Every test-dev zip of the DAVIS-17 cells of the wired DAVIS tables (split_2017 = test-dev)."""
    if DAVIS17 != "2017testdev":
        raise WorkflowError("davis17_test_dev_submissions: set 'split_2017: test-dev' under datasets.davis in "
                            "config.yaml (or a --configfile) to run OSVOS / STM on DAVIS-17 test-dev.")
    zips = set()
    for wiring in CFG["tables"].values():
        if wiring["builder"] != "davis_vos":
            continue
        for row in wiring["rows"].values():
            for col in wiring["columns"].values():
                if col.get("year") != "2017":
                    continue
                system, aug, pool, _ = davis_cell_run(row, col)
                for seed in wiring.get("seeds", CFG["seeds"]["downstream"]):
                    zips.add(test_dev_zip(system, aug, pool, seed))
    return sorted(zips)


rule davis17_test_dev_submissions:
    localrule: True
    input:
        lambda wc: test_dev_submissions(),


BUILDERS = {"davis_vos": davis_vos_cell}
BUILDER_NOTES["davis_vos"] = (
    "DAVIS-17 = the val split (datasets.davis.split_2017 = val: the thesis trains OSMIS on the DAVIS-17 "
    "validation videos, l.1756; its bracketed STM DAVIS-17 value fits STM's test-dev score, see README)."
    if DAVIS17 == "2017" else
    "DAVIS-17 = test-dev (datasets.davis.split_2017): scored by the DAVIS evaluation server, not here.")


def filter_figure_spec():
    """Training pair, kept and rejected samples of Table 6.5's pools (DAVIS-17 val; DAVIS-16 when DAVIS-17
    is test-dev, whose pools the table does not score)."""
    if not davis_available():
        return []
    selection = CFG["filtering"]["default"]
    seed = CFG["seeds"]["osmis"][0]
    year = "2017" if DAVIS17 == "2017" else "2016"
    pairs = []
    for seq in val_sequences(year)[:4]:
        pairs.append({
            "name": seq,
            "image": f"{R}/data/pairs/davis{year}/{seq}/image.png",
            "mask": f"{R}/data/pairs/davis{year}/{seq}/mask.png",
            "manifest": f"{R}/filtered/osmis/default/davis{year}/{seq}/seed{seed}/{selection}/manifest.json",
        })
    return [{"out": f"{R}/figures/table_6_5_osmis_pools.png", "pairs": pairs,
             "title": f"OSMIS pools ({PRESET} preset): training pair | kept | rejected ({selection})"}]


rule figure_osmis_pools:
    input:
        lambda wc: [p[k] for f in filter_figure_spec() for p in f["pairs"] for k in ("image", "mask", "manifest")],
    output:
        f"{R}/figures/table_6_5_osmis_pools.png",
    params:
        spec=lambda wc: as_json({"figures": filter_figure_spec()}),
    log:
        f"{R}/logs/figure_osmis_pools.log",
    benchmark:
        f"{R}/benchmarks/figure_osmis_pools.tsv"
    shell:
        "{PY} -m gan_core.report.figures {params.spec:q} > {log} 2>&1"


FIGURES = {"table_6_5": lambda: [f"{R}/figures/table_6_5_osmis_pools.png"]}
FIGURE_SPECS = {"table_6_5": filter_figure_spec}
