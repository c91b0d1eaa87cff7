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
        davis=DAVIS_INPUT,
        parent=osvos_parent_input(),
        pool=pool_manifest,
    output:
        f"{R}/downstream/osvos/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}/done.json",
    params:
        out=lambda wc: f"{R}/downstream/osvos/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}/{wc.seq}",
        pool=lambda wc, input: input.pool[0] if input.pool else "none",
        cfg=lambda wc: as_json(osvos_run_params(wc)),
        parent=osvos_parent_file(),
    log:
        f"{R}/logs/osvos_finetune/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}.log",
    benchmark:
        f"{R}/benchmarks/osvos_finetune/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/{{seq}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 4,
    shell:
        "{PY} -m downstream.osvos_cli finetune --davis-root {DAVIS_ROOT} --sequence {wildcards.seq} "
        "--mode {wildcards.year} --parent {params.parent} --synthetic-manifest {params.pool} "
        "--out {params.out} --params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} > {log} 2>&1"


def evaluate_inputs(wc):
    base = f"{R}/downstream/{wc.system}/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}"
    if wc.system == "stm":  # one job over all sequences
        return [f"{base}/done.json"]
    return [f"{base}/{seq}/done.json" for seq in val_sequences(wc.year)]


rule davis_evaluate:
    # DAVIS J&F (davis2017-evaluation conventions) of one (system, setting, pool, dataset, seed).
    input:
        evaluate_inputs,
    output:
        json=f"{R}/metrics/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.json",
        csv=f"{R}/metrics/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.csv",
    params:
        results=lambda wc: f"{R}/downstream/{wc.system}/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}",
        seqs=lambda wc: ",".join(val_sequences(wc.year)),
    log:
        f"{R}/logs/davis_evaluate/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/davis_evaluate/{{system}}/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.tsv"
    shell:
        "{PY} -m downstream.osvos_cli evaluate --davis-root {DAVIS_ROOT} --results {params.results} "
        "--sequences {params.seqs} --mode {wildcards.year} --pred-subdir predictions "
        "--out {output.csv} --out-json {output.json} > {log} 2>&1"


def davis_vos_cell(row, col, seed):
    """Builder 'davis_vos': row = system (osvos | stm) and augmentation setting, column = DAVIS year."""
    aug = row["augmentation"]
    if aug in ("synthetic", "both"):
        pool = f"{row.get('osmis_variant', 'default')}+{row.get('selection', CFG['filtering']['default'])}"
    else:
        pool = "real"
    path = f"{R}/metrics/{row['system']}/{aug}/{pool}/davis{col['year']}/seed{seed}.json"
    return {"file": path, "key": "J&F", "seed": seed, "scale": 100.0}


BUILDERS = {"davis_vos": davis_vos_cell}


def filter_figure_spec():
    """Training pair, kept and rejected samples for the DAVIS-17 sequences (Table 6.5's pools)."""
    if not davis_available():
        return []
    selection = CFG["filtering"]["default"]
    seed = CFG["seeds"]["osmis"][0]
    pairs = []
    for seq in val_sequences("2017")[:4]:
        pairs.append({
            "name": seq,
            "image": f"{R}/data/pairs/davis2017/{seq}/image.png",
            "mask": f"{R}/data/pairs/davis2017/{seq}/mask.png",
            "manifest": f"{R}/filtered/osmis/default/davis2017/{seq}/seed{seed}/{selection}/manifest.json",
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
