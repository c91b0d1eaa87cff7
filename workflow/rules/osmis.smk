# OSMIS / SIV-GAN: train one model per training pair, sample a pool, score and filter it.
#
# A training pair is <R>/data/pairs/<collection>/<pair>/{image,mask}.png; collections are the DAVIS
# first frames (davis2016 / davis2017, rule first_frame_pair) and the COCO-20i support images
# (coco20i_fold<k>, rules in repri.smk). Paths below are the same for every collection.


def osmis_params(variant, collection=None):
    """OSMISConfig overrides for a variant (preset params, then the collection's overrides, then the
    variant's) plus loop settings."""
    osmis = CFG["models"]["osmis"]
    variants = osmis.get("variants", {})
    if variant not in variants:
        raise WorkflowError(f"unknown OSMIS variant {variant!r}; declared: {sorted(variants)}")
    params = dict(osmis.get("params", {}))
    for prefix, overrides in osmis.get("collection_params", {}).items():
        if collection is not None and collection.startswith(prefix):
            params = gc_config.deep_merge(params, overrides)
    params = gc_config.deep_merge(params, variants[variant])
    params.update(iterations=osmis["iterations"], checkpoint_every=osmis["checkpoint_every"],
                  log_every=osmis["log_every"])
    return params


def mask_free(variant):
    """A variant listed in models.osmis.mask_free_variants trains without the mask: SIV-GAN on the pair's
    image (thesis Table 6.1's SIV-GAN row; osmis_cli train without --mask)."""
    return variant in CFG["models"]["osmis"].get("mask_free_variants", [])


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
        cfg=lambda wc: as_json(osmis_params(wc.variant, wc.collection)),
        mask=lambda wc, input: "" if mask_free(wc.variant) else f"--mask {input.mask}",
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
        "{PY} -m gan_core.train.osmis_cli train --image {input.image} {params.mask} "
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


rule qualitative_osmis:
    # The thesis' qualitative figures for any trained OSMIS / SIV-GAN run: a sample grid beside the
    # training pair (masks overlaid) or a latent interpolation strip. Example target:
    #   snakemake results/tiny/figures/qualitative/grid/osmis/default/davis2017/<seq>/seed0.png
    input:
        f"{R}/train/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}/done.json",
    output:
        f"{R}/figures/qualitative/{{kind}}/osmis/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.png",
    params:
        run=osmis_run_dir,
    wildcard_constraints:
        kind="grid|interpolate",
    log:
        f"{R}/logs/qualitative_osmis/{{kind}}/{{variant}}/{{collection}}/{{seq}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "{PY} -m gan_core.report.qualitative {wildcards.kind} --run {params.run} --out {output} "
        "--seed {CFG[sampling][seed]} --device {DEVICE} > {log} 2>&1"


def qualitative_targets():
    """Sample grids and interpolations of the default OSMIS model on the first DAVIS-17 pairs."""
    if not davis_available():
        return []
    seed = CFG["seeds"]["osmis"][0]
    return [f"{R}/figures/qualitative/{kind}/osmis/default/davis2017/{seq}/seed{seed}.png"
            for seq in val_sequences("2017")[:2] for kind in ("grid", "interpolate")]


rule qualitative_figures:
    localrule: True
    input:
        lambda wc: qualitative_targets(),
