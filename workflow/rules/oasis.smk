# OASIS semantic image synthesis -- thesis Chapter 4, Table 4.1 (builder 'semantic_synthesis').
#
#   data:     paper: ADE20K (manifest entry 'ade20k', fetch_ade20k); tiny: embedded_ade, a synthetic scene
#             dataset in the ADE20K layout (gan_core/data/embedded_ade.py)
#   train:    train_oasis (gan_core.train.oasis_cli train; resumable, DDP under torchrun)
#   sample:   sample_oasis: one image per val label map from the EMA generator (official protocol,
#             reference notes §1.7); oasis_real_val: the val images at the generated resolution
#   FID:      oasis_fid: pytorch-fid conventions (gan_core/metrics/fid.py), generated val vs real val
#             (thesis l.1123); tiny preset: seeded random Inception, as metrics.sifid_weights 'random'
#   mIoU:     paper: UperNet101 on ADE20K (thesis l.1123) -- not built, the cells say so;
#             tiny: a narrow DeepLabV3 (downstream/deeplab, ResNet-18d, random init) trained on the tiny
#             REAL train split (oasis_segmenter), applied to the generated val images (oasis_miou) --
#             a tiny-preset stand-in, labelled in the table note.
from gan_core.data import embedded_ade as gc_embedded_ade
from gan_core.provenance import provenance as gc_provenance
from gan_core.utils.atomic import write_json as gc_write_json
from gan_core.utils.jsonfile import read_json as gc_read_json

OASIS = CFG["models"]["oasis"]
OASIS_EVAL = OASIS["evaluation"]
ADE = CFG["datasets"]["ade20k"]
if ADE["source"] == "embedded":
    ADE_ROOT = f"{R}/data/ade20k/ADEChallengeData2016"
    ADE_INPUT = ADE_ROOT
else:
    ADE_ROOT = f"{resource_file(ADE['fetch'])}/{ADE.get('subdir', '')}".rstrip("/")
    ADE_INPUT = resource_marker(ADE["fetch"])
OASIS_RUN = f"{R}/train/oasis/{{variant}}/ade20k/seed{{seed}}"
OASIS_SAMPLES = f"{R}/samples/oasis/{{variant}}/ade20k/seed{{seed}}"
OASIS_METRICS = f"{R}/metrics/oasis/{{variant}}/ade20k/seed{{seed}}"
SEGMENTER = f"{R}/train/segmenter/ade20k"


def oasis_params(variant):
    """OASISConfig overrides (params + variant) plus the run keys of OASISRunConfig."""
    variants = OASIS.get("variants", {"default": {}})
    if variant not in variants:
        raise WorkflowError(f"unknown OASIS variant {variant!r}; declared: {sorted(variants)}")
    params = gc_config.deep_merge(OASIS.get("params", {}), variants[variant])
    for key in ("iterations", "checkpoint_every", "log_every", "num_workers", "bn_refresh_batches"):
        if key in OASIS:
            params[key] = OASIS[key]
    return params


def _check_oasis_params():
    """Unknown or invalid OASISConfig / OASISRunConfig / DeepLabConfig keys fail at start-up, naming the key."""
    from downstream.deeplab.config import DeepLabConfig
    from gan_core.train.oasis_cli import parse_params
    from gan_core.utils.dataclass_config import from_dict

    try:
        for variant in OASIS.get("variants", {"default": {}}):
            parse_params(as_json(oasis_params(variant)))
        from_dict(DeepLabConfig, OASIS_EVAL.get("segmenter_params", {}), where="models.oasis.evaluation.segmenter_params")
    except ReproError as exc:
        raise WorkflowError(f"config.yaml models.oasis: {exc}")


_check_oasis_params()


def oasis_num_classes():
    """Semantic classes without the dontcare 0 (ADE20K: 150; tiny: embedded n_classes)."""
    if ADE["source"] == "embedded":
        return int(ADE["embedded"]["n_classes"])
    return 150


rule embedded_ade:
    output:
        directory(f"{R}/data/ade20k/ADEChallengeData2016"),
    params:
        out=f"{R}/data/ade20k",
        cfg=lambda wc: ADE["embedded"],
    log:
        f"{R}/logs/embedded_ade.log",
    shell:
        "{PY} -m gan_core.data.embedded_ade_cli --out {params.out} --n-train {params.cfg[n_train]} "
        "--n-val {params.cfg[n_val]} --height {params.cfg[height]} --width {params.cfg[width]} "
        "--n-classes {params.cfg[n_classes]} --seed {params.cfg[seed]} > {log} 2>&1"


rule train_oasis:
    input:
        ADE_INPUT,
    output:
        done=f"{OASIS_RUN}/done.json",
        weights=f"{OASIS_RUN}/generator_ema.pt",
    params:
        out=lambda wc: OASIS_RUN.format(variant=wc.variant, seed=wc.seed),
        cfg=lambda wc: as_json(oasis_params(wc.variant)),
        extra=("--bf16 " if CFG.get("bf16") else "") + ("--channels-last" if CFG.get("channels_last") else ""),
    log:
        f"{R}/logs/train_oasis/{{variant}}/ade20k/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_oasis/{{variant}}/ade20k/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60 * 72,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.train.oasis_cli train --dataroot {ADE_ROOT} --out {params.out} "
        "--params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} {params.extra} > {log} 2>&1"


rule sample_oasis:
    input:
        ADE_INPUT,
        weights=f"{OASIS_RUN}/generator_ema.pt",
    output:
        f"{OASIS_SAMPLES}/samples.json",
    params:
        run=lambda wc: OASIS_RUN.format(variant=wc.variant, seed=wc.seed),
        out=lambda wc, output: str(Path(output[0]).parent),
        seed=CFG["sampling"]["seed"],
    log:
        f"{R}/logs/sample_oasis/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.train.oasis_cli sample --run {params.run} --dataroot {ADE_ROOT} --split validation "
        "--out {params.out} --seed {params.seed} --device {DEVICE} > {log} 2>&1"


rule oasis_real_val:
    input:
        ADE_INPUT,
        weights=f"{OASIS_RUN}/generator_ema.pt",
    output:
        directory(f"{OASIS_SAMPLES}/real_val"),
    params:
        run=lambda wc: OASIS_RUN.format(variant=wc.variant, seed=wc.seed),
    log:
        f"{R}/logs/oasis_real_val/{{variant}}/ade20k/seed{{seed}}.log",
    shell:
        "{PY} -m gan_core.train.oasis_cli real --run {params.run} --dataroot {ADE_ROOT} --split validation "
        "--out {output} > {log} 2>&1"


def oasis_fid_weights_input():
    name = OASIS_EVAL["fid_weights"]
    return [] if name == "random" else [resource_marker(name)]


rule oasis_fid:
    input:
        samples=f"{OASIS_SAMPLES}/samples.json",
        real=f"{OASIS_SAMPLES}/real_val",
        weights=lambda wc: oasis_fid_weights_input(),
    output:
        f"{OASIS_METRICS}/fid.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        weights="none" if OASIS_EVAL["fid_weights"] == "random" else resource_file(OASIS_EVAL["fid_weights"]),
    log:
        f"{R}/logs/oasis_fid/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.metrics fid --fake {params.fake} --real {input.real} --weights {params.weights} "
        "--resources {RES} --seed 0 --device {DEVICE} --preset {PRESET} --out {output} > {log} 2>&1"


rule oasis_segmenter:
    # Tiny preset only: the stand-in segmenter, trained on the REAL train split.
    input:
        ADE_INPUT,
    output:
        f"{SEGMENTER}/model.pt",
    params:
        out=SEGMENTER,
        cfg=lambda wc: as_json(OASIS_EVAL.get("segmenter_params", {})),
        k=oasis_num_classes(),
    log:
        f"{R}/logs/oasis_segmenter/ade20k.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 24,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli train --images {ADE_ROOT}/images/training "
        "--labels {ADE_ROOT}/annotations/training --num-classes {params.k} --out {params.out} "
        "--params {params.cfg:q} --encoder-weights none --seed 0 --device {DEVICE} > {log} 2>&1"


rule oasis_miou_raw:
    input:
        samples=f"{OASIS_SAMPLES}/samples.json",
        model=f"{SEGMENTER}/model.pt",
    output:
        f"{OASIS_METRICS}/raw/miou.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        k=oasis_num_classes(),
    log:
        f"{R}/logs/oasis_miou/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli evaluate --checkpoint {input.model} --images {params.fake} "
        "--labels {ADE_ROOT}/annotations/validation --num-classes {params.k} --out {output} --device {DEVICE} "
        "> {log} 2>&1"


rule oasis_miou:
    localrule: True
    input:
        f"{OASIS_METRICS}/raw/miou.json",
    output:
        f"{OASIS_METRICS}/miou.json",
    run:
        raw = gc_read_json(input[0], "segmenter result")
        settings = {"oasis": oasis_params(wildcards.variant), "segmenter": OASIS_EVAL.get("segmenter_params", {}),
                    "preset": PRESET}
        gc_write_json(output[0], {
            "metric": "miou", "miou_percent": raw["miou_percent"], "pixel_accuracy": raw["pixel_accuracy"],
            "segmenter": f"{OASIS_EVAL['segmenter']} (trained on the real train split; tiny stand-in)",
            "details": raw, "provenance": gc_provenance(params=settings, seed=int(wildcards.seed), preset=PRESET)})


def semantic_synthesis_cell(row, col, seed):
    """Builder 'semantic_synthesis': row = system (oasis) and OASIS variant, column = dataset and metric."""
    if col["dataset"] != "ade20k":
        return {"not_built": "OASIS on ADE-outdoor / Cityscapes / COCO-Stuff: dataset loaders not built yet "
                             "(only ADE20K is wired)"}
    variant = row.get("oasis_variant", "default")
    base = OASIS_METRICS.format(variant=variant, seed=seed)
    if col["metric"] == "fid":
        return {"file": f"{base}/fid.json", "key": "value", "seed": seed, "scale": 1.0}
    if OASIS_EVAL["segmenter"] == "upernet101":
        return {"not_built": "UperNet101 segmenter not implemented"}
    return {"file": f"{base}/miou.json", "key": "miou_percent", "seed": seed, "scale": 1.0}


BUILDERS["semantic_synthesis"] = semantic_synthesis_cell
