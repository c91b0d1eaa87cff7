# OSMIS synthesis metrics on DAVIS-17 -- thesis Sec. 6.3.1-6.3.3, Tables 6.1-6.4.
#
# One OSMIS model per DAVIS-17 val first frame (30 pairs at 640x384, thesis l.1756), trained and
# sampled by train_osmis / sample_osmis (osmis.smk). Per pool (variant, year, sequence, seed):
#   * SIFID (thesis l.1758): layer 0 (64-d, H*W/4 positions) of the torchvision Inception-v3,
#     every sample against the training image, mean over the pool;
#   * LPIPS diversity (thesis l.1758): mean LPIPS(alex) over all pairs i<j of the pool;
#   * mask alignment (thesis l.1760): UNet (ResNet-18 encoder) trained on the generated pairs,
#     tested on the augmented real image; "miou" = plain mIoU (the table cell), the official code's
#     thresholded score is kept as "miou_thresholded".
# The three raw metric files are merged into one JSON per pool, and the pools are averaged over
# the DAVIS-17 val sequences into metrics/osmis_synthesis/<variant>/davis2017/seed<S>.json
# (keys "sifid", "lpips", "miou"), which the table builder 'osmis_synthesis' reads.
from gan_core.provenance import provenance as gc_provenance
from gan_core.report import synthesis as gc_synthesis

SYN = f"{R}/metrics/osmis_synthesis"
SYN_POOL = f"{SYN}/{{variant}}/davis{{year}}/per_sequence/{{seq}}/seed{{seed}}"
SYN_SAMPLES = f"{R}/samples/osmis/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}"
SYN_PAIR = f"{R}/data/pairs/davis{{year}}/{{seq}}"
# The thesis reports one model per pair and no seed average for Tables 6.1-6.4 (seeds: not stated):
# their cells use the OSMIS seeds unless a wiring block lists its own.
for _tid, _wiring in CFG["tables"].items():
    if _wiring["builder"] == "osmis_synthesis":
        _wiring.setdefault("seeds", list(CFG["seeds"]["osmis"]))


rule synthesis_sifid:
    input:
        samples=f"{SYN_SAMPLES}/samples.json",
        real=f"{SYN_PAIR}/image.png",
        weights=lambda wc: metric_weights_input("sifid_weights"),
    output:
        f"{SYN_POOL}/raw/sifid.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        weights=metric_weights_arg("sifid_weights"),
        batch=CFG["metrics"]["sifid_batch_size"],
        min_side=CFG["metrics"].get("sifid_min_side", 0),
    log:
        f"{R}/logs/synthesis_sifid/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/synthesis_sifid/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "{PY} -m gan_core.metrics sifid --fake {params.fake} --real {input.real} --layers 0 "
        "--real-mode first --weights {params.weights} --resources {RES} --seed 0 --device {DEVICE} "
        "--batch-size {params.batch} --min-side {params.min_side} --preset {PRESET} --out {output} > {log} 2>&1"


rule synthesis_lpips:
    input:
        samples=f"{SYN_SAMPLES}/samples.json",
        weights=lambda wc: metric_weights_input("lpips_weights"),
    output:
        f"{SYN_POOL}/raw/lpips.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        weights=metric_weights_arg("lpips_weights"),
    log:
        f"{R}/logs/synthesis_lpips/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/synthesis_lpips/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "{PY} -m gan_core.metrics lpips-diversity --fake {params.fake} --net alex "
        "--weights {params.weights} --resources {RES} --seed 0 --device {DEVICE} --preset {PRESET} "
        "--out {output} > {log} 2>&1"


rule synthesis_mask_alignment:
    input:
        samples=f"{SYN_SAMPLES}/samples.json",
        image=f"{SYN_PAIR}/image.png",
        mask=f"{SYN_PAIR}/mask.png",
        weights=lambda wc: metric_weights_input("unet_encoder_weights"),
    output:
        f"{SYN_POOL}/raw/mask_alignment.json",
    params:
        samples=lambda wc, input: str(Path(input.samples).parent),
        weights=metric_weights_arg("unet_encoder_weights"),
        cfg=as_json(CFG["metrics"].get("mask_alignment_params", {})),
        work=lambda wc, output: str(Path(output[0]).parent / "mask_alignment.work"),
    log:
        f"{R}/logs/synthesis_mask_alignment/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/synthesis_mask_alignment/{{variant}}/davis{{year}}/{{seq}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "{PY} -m gan_core.metrics.seg_cli mask-alignment --samples {params.samples} "
        "--real-image {input.image} --real-mask {input.mask} --params {params.cfg:q} "
        "--encoder-weights {params.weights} --resources {RES} --work-dir {params.work} --seed 0 "
        "--device {DEVICE} --out {output} > {log} 2>&1"


def synthesis_settings(variant):
    """What a synthesis number depends on (hashed into the provenance's config_hash)."""
    keys = ("sifid_weights", "sifid_batch_size", "sifid_min_side", "lpips_weights", "unet_encoder_weights",
            "mask_alignment_params")
    return {"osmis": osmis_params(variant), "sampling": CFG["sampling"],
            "metrics": {k: CFG["metrics"].get(k) for k in keys}, "preset": PRESET}


def synthesis_provenance(variant, seed):
    return gc_provenance(params=synthesis_settings(variant), seed=int(seed), preset=PRESET)


rule synthesis_pool_metrics:
    localrule: True
    input:
        sifid=f"{SYN_POOL}/raw/sifid.json",
        lpips=f"{SYN_POOL}/raw/lpips.json",
        mask=lambda wc: [] if mask_free(wc.variant) else [f"{SYN_POOL}/raw/mask_alignment.json".format(
            variant=wc.variant, year=wc.year, seq=wc.seq, seed=wc.seed)],
    output:
        f"{SYN_POOL}.json",
    run:
        gc_synthesis.merge_pool_metrics(input.sifid, input.lpips, input.mask[0] if input.mask else None, output[0],
                                        synthesis_provenance(wildcards.variant, wildcards.seed))


rule synthesis_average:
    localrule: True
    input:
        lambda wc: expand(f"{SYN}/{wc.variant}/davis{wc.year}/per_sequence/{{seq}}/seed{wc.seed}.json",
                          seq=val_sequences(wc.year)),
    output:
        f"{SYN}/{{variant}}/davis{{year}}/seed{{seed}}.json",
    params:
        seqs=lambda wc: val_sequences(wc.year),
    run:
        gc_synthesis.average_over_sequences(list(input), params.seqs, output[0],
                                            synthesis_provenance(wildcards.variant, wildcards.seed))


def osmis_synthesis_cell(row, col, seed):
    """Builder 'osmis_synthesis': row = OSMIS variant, column = metric (sifid | lpips | miou), DAVIS-17."""
    scale = 100.0 if col["metric"] == "miou" else 1.0  # thesis prints mIoU in percent
    path = f"{SYN}/{row.get('osmis_variant', 'default')}/davis2017/seed{seed}.json"
    return {"file": path, "key": col["metric"], "seed": seed, "scale": scale}


BUILDERS["osmis_synthesis"] = osmis_synthesis_cell
