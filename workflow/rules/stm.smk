# STM: space-time memory network with synthetic pairs written into memory before
# frame 0 (thesis l.1839), DAVIS J&F -- Table 6.5's STM rows.

STM = CFG["downstream"]["stm"]


def stm_weights_file():
    if STM["weights"] == "train":
        return f"{R}/downstream/stm/tiny/stm_tiny.pth"
    return resource_file(STM["fetch"])


def stm_weights_input():
    return stm_weights_file() if STM["weights"] == "train" else resource_marker(STM["fetch"])


rule stm_train_tiny:
    # Tiny preset only: a small STM trained by the workflow on the embedded train split.
    # The paper preset uses the official weights (fetch_stm_weights).
    input:
        davis=DAVIS_INPUT,
    output:
        f"{R}/downstream/stm/tiny/stm_tiny.pth",
    params:
        out=f"{R}/downstream/stm/tiny",
        split=f"{DAVIS_ROOT}/ImageSets/2017/train.txt",
        cfg=as_json(STM.get("train_params", {})),
    log:
        f"{R}/logs/stm_train_tiny.log",
    benchmark:
        f"{R}/benchmarks/stm_train_tiny.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 12,
    shell:
        "{PY} -m downstream.stm_cli train-tiny --davis-root {DAVIS_ROOT} --split-file {params.split} "
        "--out {params.out} --params {params.cfg:q} --seed 0 --device {DEVICE} > {log} 2>&1"


def stm_pool_manifests(wc):
    return [m for seq in val_sequences(wc.year) for m in pool_manifest_for(wc.pool, wc.year, seq)]


def stm_pool_template(wc):
    if wc.pool == "real":
        return "none"
    variant, selection = wc.pool.split("+")
    seed = CFG["seeds"]["osmis"][0]
    return f"{R}/filtered/osmis/{variant}/davis{wc.year}/{{sequence}}/seed{seed}/{selection}/manifest.json"


rule stm_run:
    # One job per (setting, dataset, seed) over all sequences: inference is short, the model loads once.
    input:
        davis=lambda wc: davis_input(wc.year),
        weights=stm_weights_input(),
        pools=stm_pool_manifests,
    output:
        f"{R}/downstream/stm/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}/done.json",
    params:
        out=lambda wc: f"{R}/downstream/stm/{wc.aug}/{wc.pool}/davis{wc.year}/seed{wc.seed}",
        seqs=lambda wc: ",".join(val_sequences(wc.year)),
        pool=stm_pool_template,
        weights=stm_weights_file(),
        cfg=lambda wc: as_json({**STM.get("params", {}), "standard_aug": wc.aug in ("standard", "both")}),
        root=lambda wc: davis_root(wc.year),
        mode=lambda wc: davis_mode(wc.year),
    log:
        f"{R}/logs/stm_run/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/stm_run/{{aug}}/{{pool}}/davis{{year}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "{PY} -m downstream.stm_cli run --davis-root {params.root} --sequences {params.seqs} --mode {params.mode} "
        "--weights {params.weights} --synthetic-manifest {params.pool:q} --out {params.out} "
        "--params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} > {log} 2>&1"
