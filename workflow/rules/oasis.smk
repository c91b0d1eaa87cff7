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
#             a tiny-preset stand-in, labelled in the table note. With frequency groups (Table 4.4): the
#             classes ranked by their REAL-train pixel frequency (gan_core/metrics/segmentation.py).
#   ablations (Tables 4.2, 4.4, 4.8-4.11, appendix 10 / 12): one models.oasis variant per trained model, its
#             switches in gan_core/nets/semantic_gan_factory.py (SPADE+ = gan_preset spade_plus); VGG loss
#             weights: models.oasis.vgg_weights (manifest tv_vgg19; 'random' = seeded VGG19, tiny only)
#   diversity: sample_oasis_multi (K images per val label map, thesis l.1145: K = 20), oasis_ms_ssim and
#             oasis_lpips (mean pairwise scores per label map, averaged over the maps)
#   GPUs:     models.oasis.gpus > 1 runs train_oasis under torchrun (thesis l.1121: 4 GPUs, global batch 32)
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
OASIS_MULTI = f"{R}/samples_multi/oasis/{{variant}}/ade20k/seed{{seed}}"
OASIS_GPUS = int(OASIS.get("gpus", 1))
OASIS_VGG = OASIS.get("vgg_weights", "tv_vgg19")
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


def oasis_uses_vgg(variant):
    from gan_core.train.oasis_cli import parse_params

    return parse_params(as_json(oasis_params(variant)))[0].vgg_loss


def oasis_vgg_input(wc):
    """Marker of the verified VGG19 file when the variant trains with the VGG loss (none for 'random')."""
    return [resource_marker(OASIS_VGG)] if OASIS_VGG != "random" and oasis_uses_vgg(wc.variant) else []


def oasis_vgg_arg(wc):
    return "none" if OASIS_VGG == "random" or not oasis_uses_vgg(wc.variant) else resource_file(OASIS_VGG)


def oasis_launcher():
    """python, or torchrun over models.oasis.gpus processes on one node (DDP, rank-0 checkpoints)."""
    if OASIS_GPUS > 1:
        return f"{PY} -m torch.distributed.run --standalone --nproc_per_node={OASIS_GPUS}"
    return PY


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
        vgg=oasis_vgg_input,
    output:
        done=f"{OASIS_RUN}/done.json",
        weights=f"{OASIS_RUN}/generator_ema.pt",
    params:
        out=lambda wc: OASIS_RUN.format(variant=wc.variant, seed=wc.seed),
        cfg=lambda wc: as_json(oasis_params(wc.variant)),
        extra=("--bf16 " if CFG.get("bf16") else "") + ("--channels-last" if CFG.get("channels_last") else ""),
        vgg=oasis_vgg_arg,
        launcher=oasis_launcher(),
    log:
        f"{R}/logs/train_oasis/{{variant}}/ade20k/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_oasis/{{variant}}/ade20k/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60 * 72,
        gpu=OASIS_GPUS,  # here, not in the SLURM profile: it follows models.oasis.gpus (paper 4, tiny 1)
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} -m gan_core.train.oasis_cli train --dataroot {ADE_ROOT} "
        "--out {params.out} --params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} "
        "--vgg-weights {params.vgg} {params.extra} > {log} 2>&1"


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


rule sample_oasis_multi:
    # Table 4.2 / appendix 10 diversity protocol (thesis l.1145): K samples per val label map.
    input:
        ADE_INPUT,
        weights=f"{OASIS_RUN}/generator_ema.pt",
    output:
        f"{OASIS_MULTI}/samples.json",
    params:
        run=lambda wc: OASIS_RUN.format(variant=wc.variant, seed=wc.seed),
        out=lambda wc, output: str(Path(output[0]).parent),
        seed=CFG["sampling"]["seed"],
        k=OASIS_EVAL.get("diversity_samples", 20),
    log:
        f"{R}/logs/sample_oasis_multi/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.train.oasis_cli sample --run {params.run} --dataroot {ADE_ROOT} "
        "--split validation --per-label {params.k} --out {params.out} --seed {params.seed} --device {DEVICE} "
        "> {log} 2>&1"


rule oasis_ms_ssim:
    input:
        f"{OASIS_MULTI}/samples.json",
    output:
        f"{OASIS_METRICS}/ms_ssim.json",
    params:
        fake=lambda wc, input: str(Path(input[0]).parent / "images"),
        min_side=OASIS_EVAL.get("ms_ssim_min_side", 0),
    log:
        f"{R}/logs/oasis_ms_ssim/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.metrics ms-ssim --fake {params.fake} --groups "
        "--min-side {params.min_side} --seed 0 --device {DEVICE} --preset {PRESET} --out {output} > {log} 2>&1"


rule oasis_lpips:
    input:
        samples=f"{OASIS_MULTI}/samples.json",
        weights=lambda wc: metric_weights_input("lpips_weights"),
    output:
        f"{OASIS_METRICS}/lpips.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        weights=metric_weights_arg("lpips_weights"),
    log:
        f"{R}/logs/oasis_lpips/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.metrics lpips-diversity --fake {params.fake} --groups --net alex "
        "--weights {params.weights} --resources {RES} --seed 0 --device {DEVICE} --preset {PRESET} "
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
        groups=OASIS_EVAL.get("frequency_groups", "ade20k"),
    log:
        f"{R}/logs/oasis_miou/{{variant}}/ade20k/seed{{seed}}.log",
    threads: THREADS
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli evaluate --checkpoint {input.model} --images {params.fake} "
        "--labels {ADE_ROOT}/annotations/validation --num-classes {params.k} --out {output} --device {DEVICE} "
        "--groups {params.groups:q} --freq-labels {ADE_ROOT}/annotations/training > {log} 2>&1"


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
        groups = {}  # Table 4.4: group_<i>_miou_percent (classes ranked by real-train pixel frequency)
        for i, g in enumerate(raw.get("frequency_groups", {}).get("groups", [])):
            groups[f"group_{i}_miou_percent"] = 100.0 * g["miou"]  # NaN: no class of the group in the val maps
            groups[f"group_{i}_pixel_fraction"] = g["pixel_fraction"]
        gc_write_json(output[0], {
            "metric": "miou", "miou_percent": raw["miou_percent"], "pixel_accuracy": raw["pixel_accuracy"], **groups,
            "segmenter": f"{OASIS_EVAL['segmenter']} (trained on the real train split; tiny stand-in)",
            "details": raw, "provenance": gc_provenance(params=settings, seed=int(wildcards.seed), preset=PRESET)})


def semantic_synthesis_cell(row, col, seed):
    """Builder 'semantic_synthesis': row = an OASIS variant (``oasis_variant``; ``oasis_variant_vgg`` for the
    columns with ``vgg: true``, Tables 4.9 / 4.10), column = dataset and metric (fid | miou | ms_ssim | lpips;
    miou with ``class_group`` 0-4 / all = Table 4.4's frequency groups)."""
    if col["dataset"] == "cityscapes":
        return {"not_built": "Cityscapes loader not built"}
    if col["dataset"] != "ade20k":
        return {"not_built": "OASIS on ADE-outdoor / COCO-Stuff: dataset loaders not built yet "
                             "(only ADE20K is wired)"}
    variant = row.get("oasis_variant_vgg") if col.get("vgg") else row.get("oasis_variant", "default")
    if variant is None:
        return {"not_built": "no 'with VGG' variant wired for this row"}
    base = OASIS_METRICS.format(variant=variant, seed=seed)
    metric = col["metric"]
    if metric in ("fid", "ms_ssim", "lpips"):
        return {"file": f"{base}/{metric}.json", "key": "value", "seed": seed, "scale": 1.0}
    if metric != "miou":
        return {"not_built": f"metric {metric!r} is not computed for OASIS"}
    if OASIS_EVAL["segmenter"] == "upernet101":
        return {"not_built": "UperNet101 segmenter not implemented"}
    group = col.get("class_group", "all")
    key = "miou_percent" if group == "all" else f"group_{group}_miou_percent"
    return {"file": f"{base}/miou.json", "key": key, "seed": seed, "scale": 1.0}


BUILDERS["semantic_synthesis"] = semantic_synthesis_cell
BUILDER_NOTES["semantic_synthesis"] = " ".join(n for n in (
    "Rows marked SPADE+ are our re-implementation (gan_core/nets/spade.py, SPADE generator without encoder, "
    "2-scale PatchGAN with input concatenation, hinge loss, EMA; thesis l.1151).",
    "VGG loss: a seeded RANDOM VGG19 (tiny preset), not the ImageNet VGG19 of the thesis." if OASIS_VGG == "random"
    else "",
    f"MS-SSIM / LPIPS columns (where present): mean pairwise scores of {OASIS_EVAL.get('diversity_samples', 20)} "
    "samples per val label map, averaged over the maps (thesis l.1145).") if n)
