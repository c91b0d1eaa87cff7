# OSMIS / SIV-GAN: train one model per training pair, sample a pool, score and filter it.
#
# A training pair is <R>/data/pairs/<collection>/<pair>/{image,mask}.png; collections are the DAVIS
# first frames (davis2016 / davis2017, rule first_frame_pair) and the COCO-20i support images
# (coco20i_fold<k>, rules in repri.smk). Paths below are the same for every collection.


def osmis_params(variant):
    """OSMISConfig overrides for a variant (preset params + variant overrides) plus loop settings."""
    osmis = CFG["models"]["osmis"]
    variants = osmis.get("variants", {})
    if variant not in variants:
        raise WorkflowError(f"unknown OSMIS variant {variant!r}; declared: {sorted(variants)}")
    params = gc_config.deep_merge(osmis.get("params", {}), variants[variant])
    params.update(iterations=osmis["iterations"], checkpoint_every=osmis["checkpoint_every"],
                  log_every=osmis["log_every"])
    return params


def osmis_run_dir(wc):
    return f"{R}/train/osmis/{wc.variant}/{wc.collection}/{wc.seq}/seed{wc.seed}"


rule train_osmis:
    input:
        image=f"{R}/data/pairs/{{collection}}/{{seq}}/image.png",
        mask=f"{R}/data/pairs/{{collection}}/{{seq}}/mask.png",
    output:
        f"{R}/train/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/done.json",
    params:
        out=osmis_run_dir,
        cfg=lambda wc: as_json(osmis_params(wc.variant)),
        extra=("--bf16 " if CFG.get("bf16") else "") + ("--channels-last" if CFG.get("channels_last") else ""),
    log:
        f"{R}/logs/train_osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 48,
    shell:
        "{PY} -m gan_core.train.osmis_cli train --image {input.image} --mask {input.mask} "
        "--out {params.out} --params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} {params.extra} "
        "> {log} 2>&1"


rule sample_osmis:
    input:
        f"{R}/train/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/done.json",
    output:
        f"{R}/samples/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/samples.json",
    params:
        run=osmis_run_dir,
        out=lambda wc: f"{R}/samples/osmis/{wc.variant}/{wc.collection}/{wc.seq}/seed{wc.seed}",
        n=CFG["sampling"]["n"],
        seed=CFG["sampling"]["seed"],
    log:
        f"{R}/logs/sample_osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/sample_osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "{PY} -m gan_core.train.osmis_cli sample --run {params.run} --n {params.n} --seed {params.seed} "
        "--out {params.out} --device {DEVICE} > {log} 2>&1"


rule sifid_filter:
    # Per-sample SIFID at the four InceptionV3 layers against the training image,
    # rank average, drop the worst fraction (thesis l.1835, Table 6.8).
    input:
        samples=f"{R}/samples/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/samples.json",
        real=f"{R}/data/pairs/{{collection}}/{{seq}}/image.png",
        weights=lambda wc: metric_weights_input("sifid_weights"),
    output:
        f"{R}/filtered/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/{{selection}}/manifest.json",
    params:
        samples=lambda wc, input: str(Path(input.samples).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
        layers=lambda wc: ",".join(str(l) for l in CFG["filtering"]["selections"][wc.selection]["layers"]),
        drop=lambda wc: CFG["filtering"]["selections"][wc.selection]["drop_fraction"],
        weights=metric_weights_arg("sifid_weights"),
        batch=CFG["metrics"]["sifid_batch_size"],
        min_side=CFG["metrics"].get("sifid_min_side", 0),
    log:
        f"{R}/logs/sifid_filter/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/{{selection}}.log",
    benchmark:
        f"{R}/benchmarks/sifid_filter/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/{{selection}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "{PY} -m gan_core.metrics.sifid_cli filter --samples {params.samples} --real {input.real} "
        "--out {params.out} --layers {params.layers} --drop-fraction {params.drop} --weights {params.weights} "
        "--seed 0 --device {DEVICE} --batch-size {params.batch} --min-side {params.min_side} "
        "--real-mode {CFG[filtering][real_mode]} > {log} 2>&1"
