# SIV-GAN, thesis Chapter 5: Single Image / Single Video synthesis (Tables 5.1-5.6, Fig. 5.6).
#
# Settings (thesis l.1468-1470): "image" = one model per image (the 50 Places images of SinGAN's
# evaluation; the middle frame of each DAVIS/YFCC100M video), "video" = one model per video on all
# its frames, "video_skip<K>" = every K-th frame, a fixed number of frames (Fig. 5.6, thesis l.1521).
# Collections: "places" (images), "davis" (the configured video selection), "skip" (Fig. 5.6 videos).
#
#   data:    <R>/data/single/<collection>/<name>/<setting>/{image.png | frames/, frames.json}
#   train:   <R>/train/sivgan/<variant>/<setting>/<collection>/<name>/seed<S>/done.json  (resumable)
#   samples: <R>/samples/sivgan/<variant>/<setting>/<collection>/<name>/seed<S>/samples.json
#   metrics: <R>/metrics/sivgan/<variant>/<setting>/<collection>/per_item/<name>/seed<S>.json
#            <R>/metrics/sivgan/<variant>/<setting>/<collection>/seed<S>.json  (mean over the items)
#
# Per pool (thesis l.1472): SIFID mean and best at two Inception layers (H*W/4 and H*W/16; vs. the
# training image, or vs. the frames for videos), LPIPS diversity, pixel diversity (Single Image),
# LPIPS to the nearest augmented training image. The table builder 'sivgan_synthesis' reads the means.
from gan_core.data import embedded_single as gc_single_emb
from gan_core.provenance import provenance as gc_sivgan_provenance
from gan_core.report import synthesis as gc_sivgan_synthesis

SIVGAN = CFG["models"]["sivgan"]
SINGLE = CFG["datasets"]["single_image"]
SIVGAN_EVAL = SIVGAN["evaluation"]
SIVGAN_FIG = SIVGAN["figure_5_6"]
SINGLE_EMBEDDED_ROOT = f"{R}/data/single_embedded"

for _tid, _wiring in CFG["tables"].items():
    if _wiring["builder"] == "sivgan_synthesis":  # one model per item; seeds: not stated in the thesis
        _wiring.setdefault("seeds", list(CFG["seeds"]["osmis"]))


wildcard_constraints:
    setting=r"image|video|video_skip\d+",
    vsetting=r"video|video_skip\d+",
    scollection="places|davis|skip",
    item=r"[A-Za-z0-9_.\-]+",


# ------------------------------------------------------------------------------------ data
def _manifest_folder(fetch, subdir=""):
    return f"{resource_file(fetch)}/{subdir}".rstrip("/")


def _missing(what, fetch, folder):
    entry = MANIFEST[fetch]
    raise WorkflowError(f"{what} is missing: {folder} not found. {entry.how_to_get()} "
                        f"(manifest entry {fetch!r}{'' if entry.manual else f'; fetch_{fetch}'}).")


def single_items(collection):
    """The item names of a collection (images of 'places', videos of 'davis' / 'skip')."""
    if SINGLE["source"] == "embedded":
        ecfg = gc_single_emb.EmbeddedSingleConfig(**SINGLE["embedded"])
        return gc_single_emb.image_names(ecfg) if collection == "places" else gc_single_emb.video_names(ecfg)
    if collection == "places":
        folder = Path(_manifest_folder(SINGLE["places"]["fetch"], SINGLE["places"].get("subdir", "")))
        if not folder.is_dir():
            _missing("The Places-50 single-image set", SINGLE["places"]["fetch"], folder)
        return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if collection == "davis":
        return list(SINGLE["videos"]["selection"])
    return list(SIVGAN_FIG["videos"])


def single_source(collection, item):
    """The raw source of an item: an image file (places) or a folder of frames (videos)."""
    if SINGLE["source"] == "embedded":
        if collection == "places":
            return f"{SINGLE_EMBEDDED_ROOT}/places/{item}.png"
        return f"{SINGLE_EMBEDDED_ROOT}/videos/{item}"
    if collection == "places":
        folder = Path(_manifest_folder(SINGLE["places"]["fetch"], SINGLE["places"].get("subdir", "")))
        hits = sorted(p for p in folder.glob(f"{item}.*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not hits:
            _missing(f"Places image {item!r}", SINGLE["places"]["fetch"], folder / item)
        return str(hits[0])
    if collection == "davis":
        return f"{_manifest_folder(SINGLE['videos']['fetch'], SINGLE['videos'].get('frames_subdir', ''))}/{item}"
    return f"{_manifest_folder(SIVGAN_FIG['fetch'], SIVGAN_FIG.get('subdir', ''))}/{item}"


def single_source_input(wc):
    """What Snakemake waits for: the embedded folder, the verified download, or the placed file."""
    if SINGLE["source"] == "embedded":
        return [SINGLE_EMBEDDED_ROOT]
    fetch = {"places": SINGLE["places"]["fetch"], "davis": SINGLE["videos"]["fetch"],
             "skip": SIVGAN_FIG["fetch"]}[wc.scollection]
    if MANIFEST[fetch].manual:  # placed by hand: the source itself must exist
        return [single_source(wc.scollection, wc.item)]
    return [resource_marker(fetch)]


def video_subset(setting):
    """(skip, max_frames) of a video setting: all frames, or Fig. 5.6's every K-th frame."""
    if setting == "video":
        return 1, 0
    return int(setting[len("video_skip"):]), int(SIVGAN_FIG["n_frames"])


rule sivgan_embedded_data:
    output:
        directory(SINGLE_EMBEDDED_ROOT),
    params:
        cfg=lambda wc: SINGLE["embedded"],
    log:
        f"{R}/logs/sivgan_embedded_data.log",
    shell:
        "{PY} -m gan_core.data.single_image_cli embedded --out {output} --height {params.cfg[height]} "
        "--width {params.cfg[width]} --n-images {params.cfg[n_images]} --n-videos {params.cfg[n_videos]} "
        "--n-frames {params.cfg[n_frames]} --seed {params.cfg[seed]} > {log} 2>&1"


rule sivgan_image:
    # Single Image: the Places image, or the middle frame of a video (thesis l.1470).
    input:
        single_source_input,
    output:
        f"{R}/data/single/{{scollection}}/{{item}}/image/image.png",
    params:
        src=lambda wc: single_source(wc.scollection, wc.item),
    log:
        f"{R}/logs/sivgan_image/{{scollection}}/{{item}}.log",
    shell:
        "{PY} -m gan_core.data.single_image_cli image --src {params.src:q} --out {output} > {log} 2>&1"


rule sivgan_video:
    # Single Video: all frames (thesis l.1470), or every K-th frame, n_frames of them (Fig. 5.6).
    input:
        single_source_input,
    output:
        f"{R}/data/single/{{scollection}}/{{item}}/{{vsetting}}/frames.json",
    params:
        src=lambda wc: single_source(wc.scollection, wc.item),
        out=lambda wc, output: str(Path(output[0]).parent),
        skip=lambda wc: video_subset(wc.vsetting)[0],
        n=lambda wc: video_subset(wc.vsetting)[1],
    log:
        f"{R}/logs/sivgan_video/{{scollection}}/{{item}}/{{vsetting}}.log",
    shell:
        "{PY} -m gan_core.data.single_image_cli video --src {params.src:q} --out {params.out} "
        "--skip {params.skip} --max-frames {params.n} > {log} 2>&1"


def sivgan_data(wc):
    base = f"{R}/data/single/{wc.scollection}/{wc.item}/{wc.setting}"
    return f"{base}/image.png" if wc.setting == "image" else f"{base}/frames.json"


def sivgan_real(wc):
    """The training data as a metric argument: the image, or the frame folder."""
    base = f"{R}/data/single/{wc.scollection}/{wc.item}/{wc.setting}"
    return f"{base}/image.png" if wc.setting == "image" else f"{base}/frames"


# ----------------------------------------------------------------------------------- train
def sivgan_params(variant, setting):
    """OSMISConfig overrides (SIV-GAN: no mask) of a variant plus the loop settings of a setting."""
    variants = SIVGAN.get("variants", {})
    if variant not in variants:
        raise WorkflowError(f"unknown SIV-GAN variant {variant!r}; declared: {sorted(variants)}")
    params = gc_config.deep_merge(SIVGAN.get("params", {}), variants[variant])
    params.update(iterations=SIVGAN["iterations"]["image" if setting == "image" else "video"],
                  checkpoint_every=SIVGAN["checkpoint_every"], log_every=SIVGAN["log_every"])
    return params


SIVGAN_KEY = "{variant}/{setting}/{scollection}/{item}/seed{seed}"


def sivgan_run_dir(wc):
    return f"{R}/train/sivgan/{wc.variant}/{wc.setting}/{wc.scollection}/{wc.item}/seed{wc.seed}"


rule train_sivgan:
    input:
        sivgan_data,
    output:
        f"{R}/train/sivgan/{SIVGAN_KEY}/done.json",
    params:
        out=sivgan_run_dir,
        data=lambda wc: f"--image {sivgan_real(wc)}" if wc.setting == "image" else f"--images {sivgan_real(wc)}",
        cfg=lambda wc: as_json(sivgan_params(wc.variant, wc.setting)),
        extra=("--bf16 " if CFG.get("bf16") else "") + ("--channels-last" if CFG.get("channels_last") else ""),
    log:
        f"{R}/logs/train_sivgan/{SIVGAN_KEY}.log",
    benchmark:
        f"{R}/benchmarks/train_sivgan/{SIVGAN_KEY}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60 * 48,
    shell:
        "{PY} -m gan_core.train.osmis_cli train {params.data} --out {params.out} --params {params.cfg:q} "
        "--seed {wildcards.seed} --device {DEVICE} {params.extra} > {log} 2>&1"


rule sample_sivgan:
    input:
        f"{R}/train/sivgan/{SIVGAN_KEY}/done.json",
    output:
        f"{R}/samples/sivgan/{SIVGAN_KEY}/samples.json",
    params:
        run=sivgan_run_dir,
        out=lambda wc, output: str(Path(output[0]).parent),
        n=CFG["sampling"]["n"],
        seed=CFG["sampling"]["seed"],
    log:
        f"{R}/logs/sample_sivgan/{SIVGAN_KEY}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "{PY} -m gan_core.train.osmis_cli sample --run {params.run} --n {params.n} --seed {params.seed} "
        "--out {params.out} --device {DEVICE} > {log} 2>&1"


# --------------------------------------------------------------------------------- metrics
SIVGAN_POOL = f"{R}/metrics/sivgan/{{variant}}/{{setting}}/{{scollection}}/per_item/{{item}}/seed{{seed}}"
SIFID_LAYERS = dict(SIVGAN_EVAL["sifid_layers"])


def sivgan_metric_commands(wc, input, output):
    """Argument lists of python -m gan_core.metrics for one pool (run in one process)."""
    fake = str(Path(input.samples).parent / "images")
    real = sivgan_real(wc)
    raw = Path(output[0]).parent
    common = ["--seed", "0", "--device", DEVICE, "--preset", PRESET]
    real_mode = "first" if wc.setting == "image" else SIVGAN_EVAL["video_sifid_real_mode"]
    layers = ",".join(str(l) for l in sorted(set(SIFID_LAYERS.values())))
    cmds = [
        ["sifid", "--fake", fake, "--real", real, "--layers", layers, "--real-mode", real_mode,
         "--weights", metric_weights_arg("sifid_weights"), "--resources", RES,
         "--batch-size", str(CFG["metrics"]["sifid_batch_size"]),
         "--min-side", str(CFG["metrics"].get("sifid_min_side", 0)), "--out", str(raw / "sifid.json"), *common],
        ["lpips-diversity", "--fake", fake, "--net", "alex", "--weights", metric_weights_arg("lpips_weights"),
         "--resources", RES, "--out", str(raw / "lpips.json"), *common],
        ["dist-to-train", "--fake", fake, "--train", real, "--net", "alex", "--aug-kind", "siv",
         "--n-aug", str(SIVGAN_EVAL["dist_train_n_aug"]), "--weights", metric_weights_arg("lpips_weights"),
         "--resources", RES, "--out", str(raw / "dist_train.json"), *common],
    ]
    if wc.setting == "image":  # pixel diversity is reported in the Single Image setting (Tables 5.1, 5.3-5.5)
        cmds.append(["pixel-diversity", "--fake", fake, "--reference", real,
                     "--out", str(raw / "pixel_div.json"), *common])
    return as_json(cmds)


rule sivgan_metrics:
    input:
        samples=f"{R}/samples/sivgan/{SIVGAN_KEY}/samples.json",
        data=sivgan_data,
        weights=lambda wc: metric_weights_input("sifid_weights") + metric_weights_input("lpips_weights"),
    output:
        f"{SIVGAN_POOL}/raw/done.json",
    params:
        cmds=sivgan_metric_commands,
    log:
        f"{R}/logs/sivgan_metrics/{SIVGAN_KEY}.log",
    benchmark:
        f"{R}/benchmarks/sivgan_metrics/{SIVGAN_KEY}.tsv"
    threads: THREADS
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "{PY} -m gan_core.metrics.batch_cli --commands {params.cmds:q} > {log} 2>&1 && "
        "echo '{{\"done\": true}}' > {output}"


def sivgan_settings(variant, setting):
    """What a SIV-GAN number depends on (hashed into the provenance's config_hash)."""
    keys = ("sifid_weights", "sifid_batch_size", "sifid_min_side", "lpips_weights")
    return {"sivgan": sivgan_params(variant, setting), "evaluation": SIVGAN_EVAL, "sampling": CFG["sampling"],
            "metrics": {k: CFG["metrics"].get(k) for k in keys}, "data": SINGLE, "preset": PRESET}


def sivgan_provenance(variant, setting, seed):
    return gc_sivgan_provenance(params=sivgan_settings(variant, setting), seed=int(seed), preset=PRESET)


rule sivgan_pool_metrics:
    localrule: True
    input:
        f"{SIVGAN_POOL}/raw/done.json",
    output:
        f"{SIVGAN_POOL}.json",
    run:
        raw = Path(input[0]).parent
        names = ["sifid", "lpips", "dist_train"] + (["pixel_div"] if wildcards.setting == "image" else [])
        gc_sivgan_synthesis.merge_sivgan_pool_metrics({n: raw / f"{n}.json" for n in names}, SIFID_LAYERS,
                                                      output[0], sivgan_provenance(wildcards.variant,
                                                                                   wildcards.setting, wildcards.seed))


rule sivgan_average:
    localrule: True
    input:
        lambda wc: expand(f"{R}/metrics/sivgan/{wc.variant}/{wc.setting}/{wc.scollection}/per_item/{{item}}/"
                          f"seed{wc.seed}.json", item=single_items(wc.scollection)),
    output:
        f"{R}/metrics/sivgan/{{variant}}/{{setting}}/{{scollection}}/seed{{seed}}.json",
    params:
        names=lambda wc: single_items(wc.scollection),
    run:
        gc_sivgan_synthesis.average_over_sequences(
            list(input), params.names, output[0], sivgan_provenance(wildcards.variant, wildcards.setting,
                                                                    wildcards.seed),
            keys=gc_sivgan_synthesis.sivgan_keys(SIFID_LAYERS))


# --------------------------------------------------------------------------------- builder
def sivgan_synthesis_cell(row, col, seed):
    """Builder 'sivgan_synthesis': row = SIV-GAN variant, column = (setting, collection, metric)."""
    variant = row.get("sivgan_variant", "default")
    path = f"{R}/metrics/sivgan/{variant}/{col['setting']}/{col.get('collection', 'davis')}/seed{seed}.json"
    return {"file": path, "key": col["metric"], "seed": seed, "scale": 1.0}


BUILDERS["sivgan_synthesis"] = sivgan_synthesis_cell


# ----------------------------------------------------------------------------- Fig. 5.6
FIG_5_6 = f"{R}/figures/figure_5_6_skip_factor.png"


def skip_factor_files():
    """Averaged metric files of the default SIV-GAN per skip factor (Fig. 5.6)."""
    seed = CFG["seeds"]["osmis"][0]
    return {k: f"{R}/metrics/sivgan/default/video_skip{k}/skip/seed{seed}.json" for k in SIVGAN_FIG["skips"]}


def skip_factor_spec():
    return [{"kind": "skip_factor", "out": FIG_5_6, "files": {str(k): v for k, v in skip_factor_files().items()},
             "metrics": ["dist_train", SIVGAN_FIG["sifid_key"]], "preset": PRESET,
             "not_run": {"FastGAN": "FastGAN (Liu et al. 2021) is not re-implemented: not run"},
             "title": f"Fig. 5.6: SIV-GAN, single video, skip factor ({PRESET} preset)"}]


def figure_5_6_inputs(wc):
    if not SIVGAN_FIG["videos"]:
        raise WorkflowError("figure_5_6: no videos configured (models.sivgan.figure_5_6.videos). The thesis "
                            "used 5 long YFCC100M sequences (thesis l.1521), which are not public; see the "
                            f"manifest entry {SIVGAN_FIG['fetch']!r}.")
    return list(skip_factor_files().values())


rule figure_5_6:
    input:
        figure_5_6_inputs,
    output:
        FIG_5_6,
    params:
        spec=lambda wc: as_json({"figures": skip_factor_spec()}),
    log:
        f"{R}/logs/figure_5_6.log",
    shell:
        "{PY} -m gan_core.report.sivgan_figure {params.spec:q} > {log} 2>&1"
