# RePRI on COCO-20i with OSMIS synthetic supports -- thesis Sec. 6.3.4-6.3.5 (l.1822-1869), Tables 6.6-6.8.
#
#   COCO instances JSON --coco_masks--> <R>/data/coco/{val,train}/*.png + lists/{split}.txt (first polygon of
#   each non-crowd instance, later overwrite earlier; gan_core/data/coco.py)
#   --coco_supports (checkpoint)--> support_pool.json per fold: N images per test class (thesis l.1822: 5 ->
#   100 pairs per fold), eligible for RePRI (>= 2048 px)
#   --coco_support_pair--> <R>/data/pairs/coco20i_fold<k>/c<class>_<stem>/{image,mask}.png, which the OSMIS
#   rules of osmis.smk train, sample and SIFID-filter like the DAVIS first frames
#   --repri_synthetic--> <R>/downstream/repri/synthetic/<variant>+<selection>/fold<k>/<class>/<stem>/manifest.json
#   --repri_evaluate--> <R>/metrics/repri/<aug>/<pool>/coco20i_fold<k>/seed<S>.json  ({"value": mIoU %})
#
# Paper preset: COCO val2014 images + annotations from fetch rules, the official per-fold PSPNet checkpoints
# (manual download). Tiny preset: the embedded COCO-format dataset and a narrow PSPNet trained on the base
# classes of the embedded train split (repri_train_tiny).
from gan_core.data import coco as gc_coco
from gan_core.utils.dataclass_config import from_dict as gc_from_dict
from downstream.repri.config import RePRIConfig as _RePRIConfig
from downstream.repri.train_tiny import RePRITrainConfig as _RePRITrainConfig

COCO = CFG["datasets"]["coco"]
REPRI = CFG["downstream"]["repri"]
COCO_ROOT = f"{R}/data/coco"          # label maps, lists, links to the image folders (list paths are relative to it)
COCO_FOLDS = [0, 1, 2, 3]
try:
    gc_from_dict(_RePRIConfig, REPRI.get("params", {}), where="downstream.repri.params")
    gc_from_dict(_RePRITrainConfig, REPRI.get("train_params", {}), where="downstream.repri.train_params")
except ReproError as exc:
    raise WorkflowError(str(exc))

if COCO["source"] == "embedded":
    COCO_SRC = f"{R}/data/coco_embedded"

    def coco_split_inputs(wc):
        return [COCO_SRC]

    def coco_annotations(split):
        return f"{COCO_SRC}/annotations/instances_{split}2014.json"

    def coco_images(split):
        return f"{COCO_SRC}/{split}2014"

else:

    def coco_split_inputs(wc):
        if wc.split != "val":
            raise WorkflowError("the COCO train split is only built for the embedded dataset (tiny preset): the "
                                "paper preset uses the official RePRI checkpoints, trained by the RePRI authors")
        return [resource_marker(COCO["images_fetch"]), resource_marker(COCO["annotations_fetch"])]

    def coco_annotations(split):
        return resource_file(COCO["annotations_fetch"], COCO["annotations_file"])

    def coco_images(split):
        return resource_file(COCO["images_fetch"], COCO["images_subdir"])


def repri_checkpoint(fold):
    if REPRI["checkpoint"] == "train":
        return f"{R}/downstream/repri/checkpoints/fold{fold}/best.pth"
    return resource_file("repri_coco_checkpoints", REPRI["checkpoint_file"].format(fold=fold))


def coco_missing():
    """What the paper preset still lacks before RePRI can run (empty when ready)."""
    missing = []
    if COCO["source"] != "embedded":
        for name in (COCO["images_fetch"], COCO["annotations_fetch"]):
            if not Path(resource_marker(name)).is_file():
                missing.append(f"'snakemake --cores 1 fetch_{name}'")
    if missing:
        missing = ["COCO 2014 val is missing; fetch it with " + " and ".join(missing) + " (first time: add "
                   "--config allow_unpinned_downloads=true, since no checksum of the archives is published; the "
                   "recorded sha256 is then checked on every later use)"]
    if REPRI["checkpoint"] != "train":
        absent = [f for f in COCO_FOLDS if not Path(repri_checkpoint(f)).is_file()]
        if absent:
            entry = MANIFEST["repri_coco_checkpoints"]
            missing.append(f"the official RePRI checkpoints of folds {absent} are missing "
                           f"(e.g. {repri_checkpoint(absent[0])}). {entry.how_to_get()}")
    return missing


def check_coco_ready():
    missing = coco_missing()
    if missing:
        raise WorkflowError("RePRI (COCO-20i) cannot run yet: " + "; ".join(missing))


rule embedded_coco:
    output:
        directory(f"{R}/data/coco_embedded"),
    params:
        cfg=lambda wc: COCO["embedded"],
        classes=lambda wc: ",".join(str(c) for c in COCO["embedded"]["classes"]),
    log:
        f"{R}/logs/embedded_coco.log",
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{PY} -m gan_core.data.coco_cli embedded --out {output} --height {params.cfg[height]} "
        "--width {params.cfg[width]} --n-train {params.cfg[n_train]} --n-val {params.cfg[n_val]} "
        "--classes {params.classes} --seed {params.cfg[seed]} > {log} 2>&1"


rule coco_masks:
    # Label maps with the official rule (first polygon per non-crowd instance) and the image list.
    input:
        coco_split_inputs,
    output:
        labels=directory(f"{COCO_ROOT}/{{split}}"),
        listing=f"{COCO_ROOT}/lists/{{split}}.txt",
    wildcard_constraints:
        split="train|val",
    params:
        ann=lambda wc: coco_annotations(wc.split),
        images=lambda wc: coco_images(wc.split),
    log:
        f"{R}/logs/coco_masks/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/coco_masks/{{split}}.tsv"
    resources:
        mem_mb=8000,        # instances_val2014.json (~160 MB of JSON) in memory
        runtime=120,        # 40k label maps
    shell:
        "{PY} -m gan_core.data.coco_cli masks --annotations {params.ann} --images {params.images} "
        "--split {wildcards.split} --root {COCO_ROOT} > {log} 2>&1"


checkpoint coco_supports:
    # N support images per test class of a fold (thesis l.1822); the pair list is data-dependent.
    input:
        f"{COCO_ROOT}/lists/val.txt",
    output:
        f"{COCO_ROOT}/supports/fold{{fold}}/support_pool.json",
    wildcard_constraints:
        fold="[0-3]",
    params:
        n=COCO["n_supports_per_class"],
        seed=COCO["support_seed"],
    log:
        f"{R}/logs/coco_supports/fold{{fold}}.log",
    resources:
        mem_mb=4000,
        runtime=60,         # reads every val label map once
    shell:
        "{PY} -m gan_core.data.coco_cli supports --root {COCO_ROOT} --list {input} --fold {wildcards.fold} "
        "--n {params.n} --seed {params.seed} --out {output} > {log} 2>&1"


rule coco_support_pair:
    # The OSMIS training pair of one (class, support image): image at its original size + binary class mask.
    input:
        f"{COCO_ROOT}/lists/val.txt",
    output:
        image=f"{R}/data/pairs/coco20i_fold{{fold}}/c{{cls}}_{{stem}}/image.png",
        mask=f"{R}/data/pairs/coco20i_fold{{fold}}/c{{cls}}_{{stem}}/mask.png",
    wildcard_constraints:
        fold="[0-3]",
        cls=r"\d+",
        stem=r"[A-Za-z0-9_.\-]+",
    log:
        f"{R}/logs/coco_support_pair/fold{{fold}}/c{{cls}}_{{stem}}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PY} -m gan_core.data.coco_cli pair --root {COCO_ROOT} --list {input} --stem {wildcards.stem} "
        "--class {wildcards.cls} --out-image {output.image} --out-mask {output.mask} > {log} 2>&1"


def repri_support_pairs(fold):
    """The (class, stem, pair id) entries of a fold's support pool (after the checkpoint ran)."""
    return gc_coco.read_pairs(checkpoints.coco_supports.get(fold=fold).output[0])


def repri_synthetic_manifests(wc):
    variant, selection = wc.pool.split("+")
    osmis_seed = CFG["seeds"]["osmis"][0]
    return [f"{R}/filtered/osmis/{variant}/coco20i_fold{wc.fold}/{p['id']}/seed{osmis_seed}/{selection}/manifest.json"
            for p in repri_support_pairs(wc.fold)]


rule repri_synthetic:
    # The filtered OSMIS pools of a fold in repri_cli's --synthetic layout <class>/<stem>/manifest.json
    # (kept pairs with absolute paths).
    localrule: True
    input:
        pool=f"{COCO_ROOT}/supports/fold{{fold}}/support_pool.json",
        manifests=repri_synthetic_manifests,
    output:
        directory(f"{R}/downstream/repri/synthetic/{{pool}}/fold{{fold}}"),
    wildcard_constraints:
        fold="[0-3]",
    run:
        gc_coco.write_synthetic_layout(gc_coco.read_pairs(input.pool), list(input.manifests), output[0])


rule repri_train_tiny:
    # Tiny preset only (downstream.repri.checkpoint: train): a narrow PSPNet on the fold's base classes.
    input:
        f"{COCO_ROOT}/lists/train.txt",
    output:
        f"{R}/downstream/repri/checkpoints/fold{{fold}}/best.pth",
    wildcard_constraints:
        fold="[0-3]",
    params:
        out=lambda wc, output: str(Path(output[0]).parent),
        cfg=as_json(REPRI.get("train_params", {})),
    log:
        f"{R}/logs/repri_train_tiny/fold{{fold}}.log",
    benchmark:
        f"{R}/benchmarks/repri_train_tiny/fold{{fold}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.repri_cli train-tiny --coco-root {COCO_ROOT} --list {input} "
        "--fold {wildcards.fold} --out {params.out} --params {params.cfg:q} --seed 0 --device {DEVICE} > {log} 2>&1"


def repri_evaluate_inputs(wc):
    synthetic = wc.aug in ("synthetic", "both")
    if synthetic == (wc.pool == "real"):
        raise WorkflowError(f"repri_evaluate: augmentation {wc.aug!r} does not go with pool {wc.pool!r}")
    inputs = {"listing": f"{COCO_ROOT}/lists/val.txt",
              "pool": f"{COCO_ROOT}/supports/fold{wc.fold}/support_pool.json",
              "checkpoint": repri_checkpoint(wc.fold)}
    if REPRI["checkpoint"] != "train":
        inputs["checkpoint"] = []   # manual resource: checked by check_coco_ready (no rule makes it)
    if synthetic:
        inputs["synthetic"] = f"{R}/downstream/repri/synthetic/{wc.pool}/fold{wc.fold}"
    return inputs


def repri_run_params(wc):
    params = dict(REPRI.get("params", {}))
    params["standard_aug"] = wc.aug in ("standard", "both")
    return params


def repri_run_seed(seed):
    """Episode seed of table seed S: 2020 + 100*S (our choice: seed 0 = the official protocol, coco.yaml
    manual_seed 2020; runs r = 0..n_runs-1 use +r, so the blocks of different table seeds do not overlap)."""
    return int(REPRI.get("params", {}).get("seed", 2020)) + 100 * int(seed)


rule repri_evaluate:
    # One (augmentation setting, synthetic pool, fold, table seed): n_runs x test_num episodes (official 5 x 1000),
    # supports restricted to the fold's support pool (thesis l.1865-1869), <= 10 synthetic supports (l.1841).
    input:
        unpack(repri_evaluate_inputs),
    output:
        f"{R}/metrics/repri/{{aug}}/{{pool}}/coco20i_fold{{fold}}/seed{{seed}}.json",
    wildcard_constraints:
        fold="[0-3]",
    params:
        cfg=lambda wc: as_json(repri_run_params(wc)),
        ckpt=lambda wc: repri_checkpoint(wc.fold),
        synthetic=lambda wc: (f"{R}/downstream/repri/synthetic/{wc.pool}/fold{wc.fold}"
                              if wc.aug in ("synthetic", "both") else "none"),
        runs=lambda wc: REPRI.get("params", {}).get("n_runs", 5),
        episodes=lambda wc: REPRI.get("params", {}).get("test_num", 1000),
        shots=lambda wc: REPRI.get("params", {}).get("shot", 1),
        seed=lambda wc: repri_run_seed(wc.seed),
    log:
        f"{R}/logs/repri_evaluate/{{aug}}/{{pool}}/coco20i_fold{{fold}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/repri_evaluate/{{aug}}/{{pool}}/coco20i_fold{{fold}}/seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m downstream.repri_cli evaluate --coco-root {COCO_ROOT} "
        "--list {input.listing} --fold {wildcards.fold} --checkpoint {params.ckpt} --shots {params.shots} "
        "--runs {params.runs} --episodes {params.episodes} --support-pool {input.pool} "
        "--synthetic {params.synthetic} --params {params.cfg:q} --seed {params.seed} --device {DEVICE} "
        "--out {output} > {log} 2>&1"


def repri_cell(row, fold, seed):
    check_coco_ready()
    aug = row["augmentation"]
    if aug in ("synthetic", "both"):
        pool = f"{row.get('osmis_variant', 'default')}+{row.get('selection', CFG['filtering']['default'])}"
    else:
        pool = "real"
    return {"file": f"{R}/metrics/repri/{aug}/{pool}/coco20i_fold{fold}/seed{seed}.json", "key": "value",
            "seed": seed, "scale": 1.0}


def coco_fewshot_cell(row, col, seed):
    """Builder 'coco_fewshot' (Table 6.6): row = augmentation setting, column = COCO-20i fold."""
    return repri_cell(row, col["fold"], seed)


def augmentation_study_cell(row, col, seed):
    """Builder 'augmentation_study' (Tables 6.7, 6.8): each column is a system -- {system: osvos, year} (OSVOS
    J&F on DAVIS, davis_vos_cell) or {system: repri, fold} (RePRI mIoU on COCO-20i). The row gives the
    augmentation / OSMIS variant / selection; row.system_augmentation.<system> overrides the augmentation for
    one column (Table 6.8's reference row: OSVOS standard, RePRI none)."""
    system = col["system"]
    r = {**row, "augmentation": row.get("system_augmentation", {}).get(system, row["augmentation"])}
    if system == "osvos":
        return davis_vos_cell({**r, "system": "osvos"}, {"year": col["year"]}, seed)
    return repri_cell(r, col["fold"], seed)


BUILDERS["coco_fewshot"] = coco_fewshot_cell
BUILDERS["augmentation_study"] = augmentation_study_cell
BUILDER_NOTES["coco_fewshot"] = (
    "RePRI mIoU (%) per COCO-20i fold, mean over the n_runs x test_num episodes of one evaluation, then mean +- "
    "std over the table seeds (episode seed 2020 + 100 x seed); supports restricted to the N images per test "
    "class on which OSMIS was trained; synthetic = <= 10 kept OSMIS pairs appended (11-shot); standard = our "
    "reading: 10 extra supports made by OSVOS' flip/zoom/rotation (RePRI has no test-time augmentation).")
BUILDER_NOTES["augmentation_study"] = (
    "OSVOS column: J&F x 100 on DAVIS-16 (as Table 6.5); RePRI column: mIoU (%) on COCO-20^0 (as Table 6.6).")
