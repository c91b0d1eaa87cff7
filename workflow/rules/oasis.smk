# OASIS semantic image synthesis -- thesis Chapter 4 (builder 'semantic_synthesis'), every dataset of l.1112-1119.
#
#   {dataset}: ade20k | ade_outdoor | cityscapes | cocostuff | lvis -- config datasets.<dataset> (source,
#             manifest entries, loader layout; gan_core/data/semantic.py) and models.oasis.dataset_params.<dataset>
#             (OASISConfig overrides: label layout, resolution). Tiny preset: embedded synthetic scenes written
#             in the dataset's folder layout (gan_core/data/embedded_ade.py --layout), NOT the real datasets.
#   data:     semantic_split: the split's real images + label maps at the generated resolution, flat folders
#             named by label stem (oasis_cli export) -- the real side of FID and what the segmenters read
#   train:    train_oasis (gan_core.train.oasis_cli train; resumable, DDP under torchrun)
#   sample:   sample_oasis: one image per val label map from the EMA generator (official protocol,
#             reference notes §1.7)
#   FID:      oasis_fid: pytorch-fid conventions (gan_core/metrics/fid.py), generated val vs real val
#             (thesis l.1123); tiny preset: seeded random Inception, as metrics.sifid_weights 'random'
#   mIoU:     evaluation.segmenter 'external': the thesis' networks (l.1123; UperNet101 ADE20K, multi-scale
#             DRN-D-105 Cityscapes, DeepLabV2 COCO-Stuff; evaluation.external_segmenters, weights from the
#             manifest; gan_core/metrics/external_seg_cli.py) applied to the generated val images;
#             'tiny_deeplab': a narrow DeepLabV3 (downstream/deeplab, random init) trained on the tiny REAL
#             train split (oasis_segmenter) -- a tiny-preset stand-in, labelled in the table note.
#             With frequency groups (Table 4.4): classes ranked by their REAL-train pixel frequency.
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
SEMANTIC_DATASETS = ("ade20k", "ade_outdoor", "cityscapes", "cocostuff", "lvis")
# Classes the segmenters score per dataset (ADE20K 150, Cityscapes 19 train ids, COCO-Stuff 182 label indices).
SEGMENTER_CLASSES = {"ade20k": 150, "ade_outdoor": 150, "cityscapes": 19, "cocostuff": 182}
# Label transform of the tiny stand-in segmenter (downstream/deeplab/data.py): the exported maps keep the
# loader's ids (0 = dontcare + classes 1..N; Cityscapes: the 35 label ids).
SEGMENTER_LABELS = {"ade20k": "ade20k", "ade_outdoor": "ade20k", "cityscapes": "cityscapes", "cocostuff": "ade20k"}
OASIS_RUN = f"{R}/train/oasis/{{variant}}/{{dataset}}/seed{{seed}}"
OASIS_SAMPLES = f"{R}/samples/oasis/{{variant}}/{{dataset}}/seed{{seed}}"
OASIS_METRICS = f"{R}/metrics/oasis/{{variant}}/{{dataset}}/seed{{seed}}"
OASIS_MULTI = f"{R}/samples_multi/oasis/{{variant}}/{{dataset}}/seed{{seed}}"
SEMANTIC_SPLIT = f"{R}/data/semantic/{{dataset}}/{{split}}"
OASIS_GPUS = int(OASIS.get("gpus", 1))
OASIS_VGG = OASIS.get("vgg_weights", "tv_vgg19")
SEGMENTER = f"{R}/train/segmenter/{{dataset}}"


wildcard_constraints:
    dataset="|".join(SEMANTIC_DATASETS),
    split="training|validation",


def semantic_cfg(dataset):
    if dataset not in CFG["datasets"]:
        raise WorkflowError(f"config.yaml datasets.{dataset} is missing (Chapter-4 dataset of the OASIS rules)")
    return CFG["datasets"][dataset]


def _fetch_names(dcfg):
    names = dcfg.get("fetch", [])
    return [names] if isinstance(names, str) else list(names)


def semantic_root(dataset):
    """The folder the loader reads (gan_core/data/semantic.py layouts): the embedded folder, ``root`` (under
    the resources dir; LVIS: under the results, made by lvis_root), or the first manifest entry's folder +
    ``subdir``."""
    dcfg = semantic_cfg(dataset)
    if dcfg["source"] == "embedded":
        return f"{R}/data/{dataset}/{embedded_root_name(dataset)}"
    if dataset == "lvis":
        return f"{R}/data/lvis"
    if dcfg.get("root"):
        return f"{RES}/{dcfg['root']}"
    return f"{resource_file(_fetch_names(dcfg)[0])}/{dcfg.get('subdir', '')}".rstrip("/")


def semantic_input(dataset):
    """Snakemake inputs that make the dataset present: the embedded folder, the verified downloads (manual
    entries: their placed folders), LVIS: the rasterised label maps."""
    dcfg = semantic_cfg(dataset)
    if dcfg["source"] == "embedded":
        return [f"{R}/data/{dataset}/{embedded_root_name(dataset)}"]
    if dataset == "lvis":
        return [f"{R}/data/lvis/lvis_labels/{split}/.complete" for split in ("train", "val")]
    return [resource_input(n) for n in _fetch_names(dcfg)]


def embedded_root_name(dataset):
    layout = semantic_cfg(dataset)["embedded"].get("layout", "ade20k")
    return gc_embedded_ade.ROOT_NAMES[layout]


def semantic_unavailable(dataset):
    """Why a dataset's cells cannot be computed in this configuration (None: they can)."""
    dcfg = semantic_cfg(dataset)
    if dcfg.get("not_available"):
        return dcfg["not_available"]
    if dataset == "ade_outdoor" and not dcfg.get("subset_list"):
        return ("ADE20K-outdoor needs the list of its images (datasets.ade_outdoor.subset_list); no official list "
                "exists (OASIS issue #23), see README")
    if dcfg["source"] != "embedded":
        for name in _fetch_names(dcfg):
            missing = manual_missing(name)
            if missing:
                return f"manual download missing: {missing}"
    return None


def data_run_keys(dataset):
    """OASISRunConfig keys that select the folder layout / subset of a dataset (ADE20K-outdoor)."""
    if dataset != "ade_outdoor":
        return {}
    listed = Path(semantic_cfg(dataset)["subset_list"])
    return {"data_layout": "ade_outdoor",
            "subset_list": str(listed if listed.is_absolute() else Path(workflow.basedir) / listed)}


def oasis_params(variant, dataset="ade20k"):
    """OASISConfig overrides (params + dataset_params + variant) plus the run keys of OASISRunConfig."""
    if variant == "released":
        return gc_config.deep_merge(dataset_params(dataset), OASIS.get("released", {}).get("params", {}))
    variants = OASIS.get("variants", {"default": {}})
    if variant not in variants:
        raise WorkflowError(f"unknown OASIS variant {variant!r}; declared: {sorted(variants)}")
    params = gc_config.deep_merge(dataset_params(dataset), variants[variant])
    for key in ("iterations", "checkpoint_every", "log_every", "num_workers", "bn_refresh_batches"):
        if key in OASIS:
            params[key] = OASIS[key]
    return params


def dataset_params(dataset):
    """The dataset's OASISConfig overrides (resolution, label layout) and its data run keys; no variant."""
    params = gc_config.deep_merge(OASIS.get("params", {}), OASIS.get("dataset_params", {}).get(dataset, {}))
    return {**params, **(data_run_keys(dataset) if semantic_unavailable(dataset) is None else {})}


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
        for dataset in OASIS.get("dataset_params", {}):
            if dataset not in SEMANTIC_DATASETS:
                raise WorkflowError(f"config.yaml models.oasis.dataset_params: unknown dataset {dataset!r}; "
                                    f"known: {SEMANTIC_DATASETS}")
            parse_params(as_json(dataset_params(dataset)))
        from_dict(DeepLabConfig, OASIS_EVAL.get("segmenter_params", {}), where="models.oasis.evaluation.segmenter_params")
    except ReproError as exc:
        raise WorkflowError(f"config.yaml models.oasis: {exc}")


_check_oasis_params()


def segmenter_classes(dataset):
    """Classes the segmenter scores (tiny ADE-layout scenes: the embedded n_classes)."""
    dcfg = semantic_cfg(dataset)
    if dcfg["source"] == "embedded" and dcfg["embedded"].get("layout", "ade20k") == "ade20k":
        return int(dcfg["embedded"]["n_classes"])
    return SEGMENTER_CLASSES[dataset]


rule embedded_semantic:
    # Tiny preset: procedural scenes in the dataset's folder layout (NOT the real dataset).
    output:
        directory(f"{R}/data/{{dataset}}/{{root}}"),
    params:
        out=lambda wc: f"{R}/data/{wc.dataset}",
        cfg=lambda wc: semantic_cfg(wc.dataset)["embedded"],
    wildcard_constraints:
        root="|".join(gc_embedded_ade.ROOT_NAMES.values()),
    log:
        f"{R}/logs/embedded_semantic/{{dataset}}_{{root}}.log",
    shell:
        "{PY} -m gan_core.data.embedded_ade_cli --out {params.out} --n-train {params.cfg[n_train]} "
        "--n-val {params.cfg[n_val]} --height {params.cfg[height]} --width {params.cfg[width]} "
        "--n-classes {params.cfg[n_classes]} --seed {params.cfg[seed]} "
        "--layout {params.cfg[layout]} > {log} 2>&1"


rule lvis_labels:
    # LVIS v1 instance annotations -> semantic label maps (gan_core/data/lvis.py) beside a link to the COCO 2017
    # images: the root of the LVIS loader. Paper preset only (the tiny preset has no LVIS-layout data).
    input:
        ann=lambda wc: resource_input(f"lvis_v1_{wc.lsplit}_annotations"),
        images=[resource_input("coco2017_train_images"), resource_input("coco2017_val_images")],
    output:
        f"{R}/data/lvis/lvis_labels/{{lsplit}}/.complete",
    params:
        json=lambda wc: resource_file(f"lvis_v1_{wc.lsplit}_annotations", f"lvis_v1_{wc.lsplit}.json"),
        images=lambda wc: str(Path(resource_file("coco2017_train_images")).parent.resolve()),
        root=f"{R}/data/lvis",
    wildcard_constraints:
        lsplit="train|val",
    log:
        f"{R}/logs/lvis_labels/{{lsplit}}.log",
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "mkdir -p {params.root} && ln -sfn {params.images} {params.root}/images && "
        "{PY} -m gan_core.data.lvis_cli --json {params.json} --split {wildcards.lsplit} --root {params.root} "
        "> {log} 2>&1 && touch {output}"


rule semantic_split:
    # The split's real images + label maps at the generated resolution (FID real side, segmenter input).
    input:
        lambda wc: semantic_input(wc.dataset),
    output:
        f"{SEMANTIC_SPLIT}/export.json",
    params:
        root=lambda wc: semantic_root(wc.dataset),
        out=lambda wc, output: str(Path(output[0]).parent),
        cfg=lambda wc: as_json(dataset_params(wc.dataset)),
    log:
        f"{R}/logs/semantic_split/{{dataset}}_{{split}}.log",
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "{PY} -m gan_core.train.oasis_cli export --dataroot {params.root} --params {params.cfg:q} "
        "--split {wildcards.split} --out {params.out} > {log} 2>&1"


RELEASED = OASIS.get("released", {})


def released_unavailable(dataset):
    """Why the released checkpoint of a dataset cannot be evaluated (None: it can)."""
    entry = RELEASED.get("checkpoints", {}).get(dataset)
    if entry is None:
        return f"no released OASIS checkpoint for {dataset} (models.oasis.released.checkpoints)"
    return manual_missing(entry["fetch"])


rule import_released_oasis:
    # models.oasis.released: a released OASIS generator as a run folder (variant 'released'), evaluated by the
    # same sampling / FID / mIoU rules as our own runs (table rows with oasis_variant: released).
    input:
        lambda wc: resource_input(RELEASED["checkpoints"][wc.dataset]["fetch"]),
    output:
        done=f"{R}/train/oasis/released/{{dataset}}/seed{{seed}}/done.json",
        weights=f"{R}/train/oasis/released/{{dataset}}/seed{{seed}}/generator_ema.pt",
    params:
        ckpt=lambda wc: resource_file(RELEASED["checkpoints"][wc.dataset]["fetch"],
                                      RELEASED["checkpoints"][wc.dataset]["file"]),
        cfg=lambda wc: as_json(gc_config.deep_merge(dataset_params(wc.dataset), RELEASED.get("params", {}))),
        out=lambda wc, output: str(Path(output.done).parent),
    log:
        f"{R}/logs/import_released_oasis/{{dataset}}/seed{{seed}}.log",
    shell:
        "{PY} -m gan_core.train.oasis_cli import --checkpoint {params.ckpt} --params {params.cfg:q} "
        "--out {params.out} > {log} 2>&1"


ruleorder: import_released_oasis > train_oasis


rule train_oasis:
    input:
        lambda wc: semantic_input(wc.dataset),
        vgg=oasis_vgg_input,
    output:
        done=f"{OASIS_RUN}/done.json",
        weights=f"{OASIS_RUN}/generator_ema.pt",
    params:
        root=lambda wc: semantic_root(wc.dataset),
        out=lambda wc: OASIS_RUN.format(variant=wc.variant, dataset=wc.dataset, seed=wc.seed),
        cfg=lambda wc: as_json(oasis_params(wc.variant, wc.dataset)),
        extra=("--bf16 " if CFG.get("bf16") else "") + ("--channels-last" if CFG.get("channels_last") else ""),
        vgg=oasis_vgg_arg,
        launcher=oasis_launcher(),
    log:
        f"{R}/logs/train_oasis/{{variant}}/{{dataset}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train_oasis/{{variant}}/{{dataset}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60 * 72,
        gpu=OASIS_GPUS,  # here, not in the SLURM profile: it follows models.oasis.gpus (paper 4, tiny 1)
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} -m gan_core.train.oasis_cli train --dataroot {params.root} "
        "--out {params.out} --params {params.cfg:q} --seed {wildcards.seed} --device {DEVICE} "
        "--vgg-weights {params.vgg} {params.extra} > {log} 2>&1"


def _sample_rule_params(per_label):
    return dict(
        run=lambda wc: OASIS_RUN.format(variant=wc.variant, dataset=wc.dataset, seed=wc.seed),
        root=lambda wc: semantic_root(wc.dataset),
        out=lambda wc, output: str(Path(output[0]).parent),
        seed=CFG["sampling"]["seed"],
        k=per_label,
    )


rule sample_oasis:
    input:
        lambda wc: semantic_input(wc.dataset),
        weights=f"{OASIS_RUN}/generator_ema.pt",
    output:
        f"{OASIS_SAMPLES}/{{split}}/samples.json",
    params:
        **_sample_rule_params(1),
    log:
        f"{R}/logs/sample_oasis/{{variant}}/{{dataset}}/seed{{seed}}_{{split}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.train.oasis_cli sample --run {params.run} --dataroot {params.root} "
        "--split {wildcards.split} --out {params.out} --seed {params.seed} --device {DEVICE} > {log} 2>&1"


rule sample_oasis_multi:
    # Table 4.2 / appendix 10 diversity protocol (thesis l.1145): K samples per val label map.
    input:
        lambda wc: semantic_input(wc.dataset),
        weights=f"{OASIS_RUN}/generator_ema.pt",
    output:
        f"{OASIS_MULTI}/samples.json",
    params:
        **_sample_rule_params(OASIS_EVAL.get("diversity_samples", 20)),
    log:
        f"{R}/logs/sample_oasis_multi/{{variant}}/{{dataset}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.train.oasis_cli sample --run {params.run} --dataroot {params.root} "
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
        f"{R}/logs/oasis_ms_ssim/{{variant}}/{{dataset}}/seed{{seed}}.log",
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
        f"{R}/logs/oasis_lpips/{{variant}}/{{dataset}}/seed{{seed}}.log",
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
        samples=f"{OASIS_SAMPLES}/validation/samples.json",
        real=f"{R}/data/semantic/{{dataset}}/validation/export.json",
        weights=lambda wc: oasis_fid_weights_input(),
    output:
        f"{OASIS_METRICS}/fid.json",
    params:
        fake=lambda wc, input: str(Path(input.samples).parent / "images"),
        real=lambda wc, input: str(Path(input.real).parent / "images"),
        weights="none" if OASIS_EVAL["fid_weights"] == "random" else resource_file(OASIS_EVAL["fid_weights"]),
    log:
        f"{R}/logs/oasis_fid/{{variant}}/{{dataset}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.metrics fid --fake {params.fake} --real {params.real} "
        "--weights {params.weights} --resources {RES} --seed 0 --device {DEVICE} --preset {PRESET} --out {output} "
        "> {log} 2>&1"


def segmenter_settings(dataset):
    """DeepLabConfig of the tiny stand-in segmenter for one dataset (its label transform follows the layout)."""
    return {**OASIS_EVAL.get("segmenter_params", {}), "label_transform": SEGMENTER_LABELS[dataset]}


rule oasis_segmenter:
    # Tiny preset only: the stand-in segmenter, trained on the REAL train split.
    input:
        f"{R}/data/semantic/{{dataset}}/training/export.json",
    output:
        f"{SEGMENTER}/model.pt",
    params:
        data=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
        cfg=lambda wc: as_json(segmenter_settings(wc.dataset)),
        k=lambda wc: segmenter_classes(wc.dataset),
    log:
        f"{R}/logs/oasis_segmenter/{{dataset}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 24,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli train --images {params.data}/images "
        "--labels {params.data}/labels --num-classes {params.k} --out {params.out} "
        "--params {params.cfg:q} --encoder-weights none --seed 0 --device {DEVICE} > {log} 2>&1"


def external_segmenter(dataset):
    entry = OASIS_EVAL.get("external_segmenters", {}).get(dataset)
    if entry is None:
        raise WorkflowError(f"config.yaml models.oasis.evaluation.external_segmenters has no entry for {dataset!r}")
    return entry


def miou_inputs(wc):
    data = f"{R}/data/semantic/{wc.dataset}"
    inputs = {"samples": OASIS_SAMPLES.format(variant=wc.variant, dataset=wc.dataset, seed=wc.seed)
                         + "/validation/samples.json",
              "val": f"{data}/validation/export.json", "train": f"{data}/training/export.json"}
    if OASIS_EVAL["segmenter"] == "tiny_deeplab":
        inputs["model"] = SEGMENTER.format(dataset=wc.dataset) + "/model.pt"
    else:
        inputs["weights"] = [resource_marker(n) for n in external_segmenter(wc.dataset)["weights"]]
    return inputs


def miou_command(wc, input):
    """The segmenter command: the tiny stand-in (downstream.deeplab_cli evaluate) or the thesis' network."""
    fake = str(Path(input.samples).parent / "images")
    val, train = str(Path(input.val).parent), str(Path(input.train).parent)
    # Table 4.4's frequency groups (ADE20K classes); none for the other datasets
    groups = OASIS_EVAL.get("frequency_groups", "ade20k") if wc.dataset in ("ade20k", "ade_outdoor") else ""
    if OASIS_EVAL["segmenter"] == "tiny_deeplab":
        return (f"{PY} -m downstream.deeplab_cli evaluate --checkpoint {input.model} --images {fake} "
                f"--labels {val}/labels --num-classes {segmenter_classes(wc.dataset)} --device {DEVICE} "
                f"--groups '{groups}' --freq-labels {train}/labels")
    ext = external_segmenter(wc.dataset)
    weights = " ".join(resource_file(n) for n in ext["weights"])
    convention = "--label-convention cocostuff_oasis " if wc.dataset == "cocostuff" else ""  # exported = shifted
    return (f"{PY} -m gan_core.metrics.external_seg_cli --segmenter {ext['name']} --weights {weights} "
            f"--images {fake} --labels {val}/labels {convention}--device {DEVICE} --groups '{groups}' "
            f"--freq-labels {train}/labels")


rule oasis_miou_raw:
    input:
        unpack(miou_inputs),
    output:
        f"{OASIS_METRICS}/raw/miou.json",
    params:
        cmd=miou_command,
    log:
        f"{R}/logs/oasis_miou/{{variant}}/{{dataset}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --out {output} > {log} 2>&1"


rule oasis_miou:
    localrule: True
    input:
        f"{OASIS_METRICS}/raw/miou.json",
    output:
        f"{OASIS_METRICS}/miou.json",
    run:
        raw = gc_read_json(input[0], "segmenter result")
        settings = {"oasis": oasis_params(wildcards.variant, wildcards.dataset), "preset": PRESET,
                    "segmenter": (segmenter_settings(wildcards.dataset) if OASIS_EVAL["segmenter"] == "tiny_deeplab"
                                  else external_segmenter(wildcards.dataset))}
        groups = {}  # Table 4.4: group_<i>_miou_percent (classes ranked by real-train pixel frequency)
        for i, g in enumerate(raw.get("frequency_groups", {}).get("groups", [])):
            groups[f"group_{i}_miou_percent"] = 100.0 * g["miou"]  # NaN: no class of the group in the val maps
            groups[f"group_{i}_pixel_fraction"] = g["pixel_fraction"]
        who = ("a narrow DeepLabV3 trained on the real train split (tiny stand-in)"
               if OASIS_EVAL["segmenter"] == "tiny_deeplab" else external_segmenter(wildcards.dataset)["name"])
        gc_write_json(output[0], {
            "metric": "miou", "miou_percent": raw["miou_percent"], "pixel_accuracy": raw["pixel_accuracy"], **groups,
            "segmenter": who, "details": raw,
            "provenance": gc_provenance(params=settings, seed=int(wildcards.seed), preset=PRESET)})


def semantic_synthesis_cell(row, col, seed):
    """Builder 'semantic_synthesis': row = an OASIS variant (``oasis_variant``; ``oasis_variant_vgg`` for the
    columns with ``vgg: true``, Tables 4.9 / 4.10), column = dataset (ade20k | ade_outdoor | cityscapes |
    cocostuff | lvis) and metric (fid | miou | ms_ssim | lpips; miou with ``class_group`` 0-4 / all = Table 4.4's
    frequency groups)."""
    dataset = col["dataset"]
    if dataset not in SEMANTIC_DATASETS:
        raise WorkflowError(f"table column dataset {dataset!r} unknown; known: {SEMANTIC_DATASETS}")
    reason = semantic_unavailable(dataset)
    if reason:
        return {"not_built": reason}
    variant = row.get("oasis_variant_vgg") if col.get("vgg") else row.get("oasis_variant", "default")
    if variant is None:
        return {"not_built": "no 'with VGG' variant wired for this row"}
    if variant == "default" and CFG.get("oasis_checkpoints", "train") == "released":
        variant = "released"  # --config oasis_checkpoints=released: the released OASIS instead of our training
    if variant == "released":
        reason = released_unavailable(dataset)
        if reason:
            return {"not_built": reason}
    base = OASIS_METRICS.format(variant=variant, dataset=dataset, seed=seed)
    metric = col["metric"]
    if metric in ("fid", "ms_ssim", "lpips"):
        return {"file": f"{base}/{metric}.json", "key": "value", "seed": seed, "scale": 1.0}
    if metric in ("lvis_map", "lvis_classes_ap_pos"):
        return {"not_built": "LVIS mAP needs the Seesaw-loss instance-segmentation model (mmdetection), which "
                             "cannot be installed with current PyTorch (reference notes baselines §4.6)"}
    if metric != "miou":
        return {"not_built": f"metric {metric!r} is not computed for OASIS"}
    if dataset not in SEGMENTER_CLASSES:
        return {"not_built": f"no semantic segmenter for {dataset} (the thesis scores LVIS with an instance "
                             "segmentation model, Table 4.5)"}
    group = col.get("class_group", "all")
    key = "miou_percent" if group == "all" else f"group_{group}_miou_percent"
    return {"file": f"{base}/miou.json", "key": key, "seed": seed, "scale": 1.0}


BUILDERS["semantic_synthesis"] = semantic_synthesis_cell
BUILDER_NOTES["semantic_synthesis"] = " ".join(n for n in (
    "Rows marked SPADE+ are our re-implementation (gan_core/nets/spade.py, SPADE generator without encoder unless "
    "the row says so, 2-scale PatchGAN with input concatenation, hinge loss, EMA; thesis l.1151).",
    "VGG loss: a seeded RANDOM VGG19 (tiny preset), not the ImageNet VGG19 of the thesis." if OASIS_VGG == "random"
    else "",
    f"MS-SSIM / LPIPS columns (where present): mean pairwise scores of {OASIS_EVAL.get('diversity_samples', 20)} "
    "samples per val label map, averaged over the maps (thesis l.1145).") if n)
