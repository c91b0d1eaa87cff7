# OASIS figures and the discriminator-as-segmenter score -- thesis Sec. 4.3.2-4.3.4
# (gan_core/report/oasis_figures_cli.py):
#
#   figure_4_7:  colour (LAB histograms, EMD) and texture (LBP histograms, chi^2) distances of generated val
#                images to the real val images, per class then averaged (thesis l.1143, l.1153-1169), for
#                SPADE+ and OASIS with and without the VGG loss (models.oasis.figures.figure_4_7_runs)
#   figure_4_10: global and local 3D-noise resampling (l.1236-1242)
#   figure_4_11: global and local latent interpolations (l.1249)
#   figure_4_12: recreations from the discriminator's segmentation of a val image (l.1251, l.1262)
#   oasis_d_segmenter: the OASIS discriminator as a segmenter on the val split, "select the highest activation
#                among real classes" (l.1244): mIoU, with the thesis' 40.0 (ADE20K) beside it
# Target: snakemake oasis_figures (all of them, ADE20K, the default OASIS model of seed models.oasis.figures.seed).
from shlex import quote as shlex_quote

from gan_core.utils.atomic import write_text as gc_write_text

OASIS_FIG = OASIS["figures"]
FIG_SEED = int(OASIS_FIG.get("seed", 0))
FIG_DATASET = OASIS_FIG.get("dataset", "ade20k")
FIG_RUNS_4_7 = OASIS_FIG["figure_4_7_runs"]
THESIS_D_MIOU = {"ade20k": 40.0}  # thesis l.1244: "the OASIS discriminator reaches a mIoU of 40.0"


def _run(variant, dataset=FIG_DATASET, seed=FIG_SEED):
    return OASIS_RUN.format(variant=variant, dataset=dataset, seed=seed)


rule oasis_editing_figure:
    # Figs. 4.10 (noise), 4.11 (interpolate), 4.12 (recreate) for any OASIS run.
    input:
        lambda wc: semantic_input(wc.dataset),
        done=f"{OASIS_RUN}/done.json",
    output:
        f"{R}/figures/oasis/{{kind}}/{{variant}}/{{dataset}}/seed{{seed}}.png",
    params:
        run=lambda wc: _run(wc.variant, wc.dataset, wc.seed),
        root=lambda wc: semantic_root(wc.dataset),
        sample_seed=CFG["sampling"]["seed"],
    wildcard_constraints:
        kind="noise|interpolate|recreate",
    log:
        f"{R}/logs/oasis_editing_figure/{{kind}}/{{variant}}/{{dataset}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.report.oasis_figures_cli {wildcards.kind} --run {params.run} "
        "--dataroot {params.root} --split validation --out {output} --seed {params.sample_seed} --device {DEVICE} "
        "> {log} 2>&1"


rule oasis_d_miou:
    input:
        lambda wc: semantic_input(wc.dataset),
        done=f"{OASIS_RUN}/done.json",
    output:
        f"{OASIS_METRICS}/d_miou.json",
    params:
        run=lambda wc: _run(wc.variant, wc.dataset, wc.seed),
        root=lambda wc: semantic_root(wc.dataset),
    log:
        f"{R}/logs/oasis_d_miou/{{variant}}/{{dataset}}/seed{{seed}}.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.report.oasis_figures_cli d-miou --run {params.run} "
        "--dataroot {params.root} --split validation --out {output} --device {DEVICE} > {log} 2>&1"


rule oasis_d_segmenter:
    # The in-text number of thesis l.1244 as a one-row table: ours | thesis | difference.
    localrule: True
    input:
        f"{R}/metrics/oasis/default/{FIG_DATASET}/seed{FIG_SEED}/d_miou.json",
    output:
        f"{R}/tables/text_oasis_d_segmenter.md",
    run:
        res = gc_read_json(input[0], "discriminator-as-segmenter result")
        ours = 100.0 * float(res["value"]) if float(res["value"]) <= 1.0 else float(res["value"])
        thesis = THESIS_D_MIOU.get(FIG_DATASET)
        banner = ("**TINY PRESET** -- synthetic data, tiny networks: these are NOT the thesis' numbers.\n\n"
                  if PRESET == "tiny" else "")
        diff = "-" if thesis is None else f"{ours - thesis:+.2f}"
        prov = res.get("provenance", {})
        gc_write_text(output[0],
            f"# OASIS discriminator as a segmenter ({FIG_DATASET} val, thesis l.1244)\n\n{banner}"
            "| model | mIoU (ours) | mIoU (thesis) | difference |\n|---|---|---|---|\n"
            f"| OASIS (default), seed {FIG_SEED} | {ours:.2f} | {'-' if thesis is None else thesis} | {diff} |\n\n"
            f"Argmax over the real-class channels of the discriminator output (channel 0 = fake excluded). "
            f"config hash {prov.get('config_hash', '?')}, commit {prov.get('git_commit', '?')}, preset {PRESET}.\n")


rule figure_4_7:
    input:
        lambda wc: semantic_input(FIG_DATASET),
        runs=[f"{_run(v)}/done.json" for v in FIG_RUNS_4_7.values()],
    output:
        f"{R}/figures/figure_4_7_colour_texture.png",
    params:
        runs=" ".join(f"--run {shlex_quote(f'{label}={_run(v)}')}" for label, v in FIG_RUNS_4_7.items()),
        root=semantic_root(FIG_DATASET),
        sample_seed=CFG["sampling"]["seed"],
    log:
        f"{R}/logs/figure_4_7.log",
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m gan_core.report.oasis_figures_cli colour-texture {params.runs} "
        "--dataroot {params.root} --split validation --out {output} --seed {params.sample_seed} "
        "--preset {PRESET} --device {DEVICE} > {log} 2>&1"


def oasis_figure_targets():
    if semantic_unavailable(FIG_DATASET):
        return []
    return ([f"{R}/figures/oasis/{k}/default/{FIG_DATASET}/seed{FIG_SEED}.png" for k in ("noise", "interpolate", "recreate")]
            + [f"{R}/figures/figure_4_7_colour_texture.png", f"{R}/tables/text_oasis_d_segmenter.md"])


rule oasis_figures:
    localrule: True
    input:
        lambda wc: oasis_figure_targets(),
