# Synthetic data augmentation for semantic segmentation -- thesis Sec. 4.3.5, Tables 4.6 / 4.7
# (builder 'semantic_augmentation').
#
#   "we take a DeepLab-V3 segmentation network with a ResNeSt-50 backbone ... and train it on ADE20K and
#   Cityscapes. At each training step ... we add for each training image its synthetic counterpart to the
#   batch, generated from the same label map" (thesis l.1147, l.1255).
#
#   real data:   semantic_split (oasis.smk): the train / val images + label maps at the OASIS resolution
#                (reference notes downstream-protocols §4.1: the thesis gives no resolution; the OASIS one
#                is the inference there, since real and synthetic images share a batch)
#   synthetic:   sample_oasis on the TRAIN split (one image per train label map) of the generator variant
#                named by downstream.deeplab_da.generators.<row setting>
#   train:       deeplab_da_train (downstream.deeplab_cli train, --synthetic = that folder or none; resumable)
#   evaluate:    deeplab_da_evaluate: mIoU on the real val split, with Table 4.7's frequency groups (Cityscapes:
#                classes ranked by train pixel frequency, groups 0-4 / 5-8 / 9-12 / 13-18)
#   gain:        deeplab_da_gain: mIoU (and per-group) gains over the run without synthetic data, same seed
DA = CFG["downstream"]["deeplab_da"]
DA_RUN = f"{R}/train/deeplab_da/{{dataset}}/{{gen}}/seed{{seed}}"
DA_METRICS = f"{R}/metrics/deeplab_da/{{dataset}}/{{gen}}/seed{{seed}}"
DA_GROUPS = {"cityscapes": "cityscapes", "ade20k": "ade20k"}


wildcard_constraints:
    gen=r"none|[A-Za-z0-9_\-]+",


def da_settings(dataset):
    """DeepLabConfig for one dataset: params, then dataset_params, then the label transform of the layout."""
    params = gc_config.deep_merge(DA.get("params", {}), DA.get("dataset_params", {}).get(dataset, {}))
    return {**params, "label_transform": SEGMENTER_LABELS[dataset]}


def da_groups(dataset):
    """Frequency groups of the evaluation: the thesis' (Table 4.7) or the configured override (tiny)."""
    return DA.get("frequency_groups", {}).get(dataset, DA_GROUPS.get(dataset, ""))


def da_inputs(wc):
    inputs = {"train": f"{R}/data/semantic/{wc.dataset}/training/export.json"}
    if wc.gen != "none":
        inputs["synthetic"] = (OASIS_SAMPLES.format(variant=wc.gen, dataset=wc.dataset, seed=DA.get("gan_seed", 0))
                               + "/training/samples.json")
    if DA.get("encoder_weights", "resnest50_encoding") != "none":
        inputs["encoder"] = resource_marker(DA.get("encoder_weights", "resnest50_encoding"))
    return inputs


def da_encoder_arg():
    name = DA.get("encoder_weights", "resnest50_encoding")
    return "none" if name == "none" else resource_file(name)


rule deeplab_da_train:
    input:
        unpack(da_inputs),
    output:
        f"{DA_RUN}/model.pt",
    params:
        data=lambda wc, input: str(Path(input.train).parent),
        synthetic=lambda wc, input: (str(Path(input.synthetic).parent / "images") if wc.gen != "none" else "none"),
        out=lambda wc, output: str(Path(output[0]).parent),
        cfg=lambda wc: as_json(da_settings(wc.dataset)),
        k=lambda wc: segmenter_classes(wc.dataset),
        encoder=da_encoder_arg(),
    log:
        f"{R}/logs/deeplab_da_train/{{dataset}}/{{gen}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/deeplab_da_train/{{dataset}}/{{gen}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=60 * 48,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli train --images {params.data}/images "
        "--labels {params.data}/labels --synthetic {params.synthetic} --num-classes {params.k} --out {params.out} "
        "--params {params.cfg:q} --encoder-weights {params.encoder} --resources {RES} --seed {wildcards.seed} "
        "--device {DEVICE} > {log} 2>&1"


rule deeplab_da_evaluate:
    input:
        model=f"{DA_RUN}/model.pt",
        val=f"{R}/data/semantic/{{dataset}}/validation/export.json",
        train=f"{R}/data/semantic/{{dataset}}/training/export.json",
    output:
        f"{DA_METRICS}/raw/miou.json",
    params:
        val=lambda wc, input: str(Path(input.val).parent),
        train=lambda wc, input: str(Path(input.train).parent),
        k=lambda wc: segmenter_classes(wc.dataset),
        groups=lambda wc: da_groups(wc.dataset),
    log:
        f"{R}/logs/deeplab_da_evaluate/{{dataset}}/{{gen}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.deeplab_cli evaluate --checkpoint {input.model} "
        "--images {params.val}/images --labels {params.val}/labels --num-classes {params.k} --out {output} "
        "--device {DEVICE} --groups {params.groups:q} --freq-labels {params.train}/labels > {log} 2>&1"


def _da_values(raw):
    """mIoU x 100 overall and per frequency group from a deeplab_cli evaluate result."""
    values = {"miou_percent": raw["miou_percent"]}
    for i, g in enumerate(raw.get("frequency_groups", {}).get("groups", [])):
        values[f"group_{i}_miou_percent"] = 100.0 * g["miou"]
    return values


rule deeplab_da_metrics:
    # mIoU (abs) and its gain over the run without synthetic data of the same seed (rel; Table 4.7).
    localrule: True
    input:
        raw=f"{DA_METRICS}/raw/miou.json",
        base=f"{R}/metrics/deeplab_da/{{dataset}}/none/seed{{seed}}/raw/miou.json",
    output:
        f"{DA_METRICS}/miou.json",
    run:
        own = _da_values(gc_read_json(input.raw, "DeepLab evaluation"))
        base = _da_values(gc_read_json(input.base, "DeepLab evaluation (no synthetic data)"))
        gains = {f"gain_{k}": own[k] - base[k] for k in own if k in base}
        gc_write_json(output[0], {
            "metric": "miou", **own, **gains, "generator_variant": wildcards.gen,
            "provenance": gc_provenance(params={"deeplab": da_settings(wildcards.dataset), "gen": wildcards.gen,
                                                "groups": da_groups(wildcards.dataset)},
                                        seed=int(wildcards.seed), preset=PRESET)})


def semantic_augmentation_cell(row, col, seed):
    """Builder 'semantic_augmentation': row ``synthetic_da`` = none or a key of downstream.deeplab_da.generators
    (-> the models.oasis variant that makes the synthetic counterparts); column = dataset, ``class_group``
    (0..k | all) and ``value``: abs (mIoU) or rel (gain over the row without synthetic data)."""
    dataset = col["dataset"]
    reason = semantic_unavailable(dataset)
    if reason:
        return {"not_built": reason}
    setting = row["synthetic_da"]
    gen = "none" if setting == "none" else DA.get("generators", {}).get(setting)
    if gen is None:
        return {"not_built": f"no generator wired for synthetic DA {setting!r} (downstream.deeplab_da.generators)"}
    group, value = col.get("class_group", "all"), col.get("value", "abs")
    if value == "rel" and gen == "none":
        return None
    key = "miou_percent" if group == "all" else f"group_{group}_miou_percent"
    if value == "rel":
        key = f"gain_{key}"
    base = DA_METRICS.format(dataset=dataset, gen=gen, seed=seed)
    return {"file": f"{base}/miou.json", "key": key, "seed": seed, "scale": 1.0}


BUILDERS["semantic_augmentation"] = semantic_augmentation_cell
BUILDER_NOTES["semantic_augmentation"] = (
    "DeepLab-V3 (downstream/deeplab) trained on the real train split at the OASIS resolution, each batch "
    "extended by the synthetic counterparts of its label maps (thesis l.1147); mIoU on the real val split. "
    "'SPADE' rows use our SPADE re-implementation (models.oasis variant named in downstream.deeplab_da.generators).")
