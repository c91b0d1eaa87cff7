# Datasets and weights: fetch rules (the only place that downloads), the embedded
# synthetic DAVIS-format dataset (tiny preset) and the first-frame training pairs.
from gan_core import resources as gc_res
from gan_core.data import embedded_davis as gc_embedded

MANIFEST = gc_res.load_manifest()
ALLOW_UNPINNED = "--allow-unpinned" if CFG.get("allow_unpinned_downloads") else ""


def resource_marker(name):
    return str(gc_res.marker_path(MANIFEST[name], RES))


def resource_file(name, relpath=""):
    path = gc_res.resource_path(MANIFEST[name], RES)
    return str(path / relpath) if relpath else str(path)


def manual_missing(name):
    """For a manual manifest entry whose folder / file has not been placed: what to do (else None)."""
    entry = MANIFEST[name]
    if not entry.manual or Path(resource_file(name)).exists():
        return None
    return f"{entry.kind} {name!r} not found at {resource_file(name)}. {entry.how_to_get()}"


def resource_input(name):
    """Snakemake input of a manifest entry: the fetch marker, or the placed path of a manual entry."""
    return resource_file(name) if MANIFEST[name].manual else resource_marker(name)


def metric_weights_input(key):
    """Marker of the verified weights file named by metrics.<key> (none for 'random')."""
    name = CFG["metrics"][key]
    return [] if name == "random" else [resource_marker(name)]


def metric_weights_arg(key):
    """CLI weights argument: 'none' (seeded random network, tiny preset) or the verified file."""
    name = CFG["metrics"][key]
    return "none" if name == "random" else resource_file(name)


# One fetch_<name> target per manifest entry that has a URL. Each verifies the
# pinned checksum; an entry without one needs --config allow_unpinned_downloads=true
# once (the sha256 is then recorded in resources/checksums.lock.yaml).
for _entry in MANIFEST.values():
    if _entry.manual:
        continue

    rule:
        name:
            f"fetch_{_entry.name}"
        localrule: True
        output:
            resource_marker(_entry.name),
        params:
            name=_entry.name,
        log:
            f"{RES}/logs/fetch_{_entry.name}.log",
        shell:
            "{PY} -m gan_core.data.fetch_cli fetch {params.name} --resources {RES} {ALLOW_UNPINNED} 2>&1 | tee {log}"


DAVIS = CFG["datasets"]["davis"]
# "2017testdev" = DAVIS-17 evaluated on test-dev (datasets.davis.split_2017); its own paths, so that
# val and test-dev results never mix. The --mode of the CLIs is the first four characters.
DAVIS17 = "2017testdev" if DAVIS.get("split_2017", "val") == "test-dev" else "2017"
if DAVIS["source"] == "embedded":
    if DAVIS17 == "2017testdev":
        raise WorkflowError("datasets.davis.split_2017 = test-dev needs the real DAVIS-2017 test-dev archive; "
                            "the embedded tiny dataset has no test-dev split (use split_2017: val).")
    EMBEDDED_CFG = gc_embedded.EmbeddedDavisConfig(**DAVIS["embedded"])
    DAVIS_ROOT = f"{R}/data/DAVIS"
    DAVIS_INPUT = DAVIS_ROOT
else:
    DAVIS_ROOT = f"{resource_file(DAVIS['fetch'])}/{DAVIS.get('subdir', '')}".rstrip("/")
    DAVIS_INPUT = resource_marker(DAVIS["fetch"])


def davis_root(year):
    """The DAVIS tree of a year wildcard (2016 | 2017 from trainval; 2017testdev from the test-dev archive)."""
    if year == "2017testdev":
        return f"{resource_file(DAVIS['test_dev_fetch'])}/{DAVIS.get('subdir', '')}".rstrip("/")
    return DAVIS_ROOT


def davis_input(year):
    return resource_marker(DAVIS["test_dev_fetch"]) if year == "2017testdev" else DAVIS_INPUT


def davis_mode(year):
    return year[:4]


def davis_available():
    return DAVIS["source"] == "embedded" or Path(DAVIS_ROOT, "ImageSets").is_dir()


def val_sequences(year):
    """The evaluated sequences of DAVIS-16 / DAVIS-17 (val split) or DAVIS-17 test-dev."""
    if DAVIS["source"] == "embedded":
        specs = [s for s in gc_embedded.sequence_specs(EMBEDDED_CFG) if s.split == "val"]
        return [s.name for s in specs if year == "2017" or s.n_objects == 1]
    split, fetch = ("test-dev", DAVIS["test_dev_fetch"]) if year == "2017testdev" else ("val", DAVIS["fetch"])
    listing = Path(davis_root(year), "ImageSets", davis_mode(year), f"{split}.txt")
    if not listing.is_file():
        raise WorkflowError(
            f"DAVIS is missing: {listing} not found. Fetch it with "
            f"'snakemake --cores 1 fetch_{fetch}' (first time: add "
            "--config allow_unpinned_downloads=true, since no checksum of the archive is published; "
            "the recorded sha256 is then checked on every later use)."
        )
    return [s for s in listing.read_text().split() if s]


rule embedded_davis:
    output:
        directory(f"{R}/data/DAVIS"),
    params:
        cfg=lambda wc: DAVIS["embedded"],
    log:
        f"{R}/logs/embedded_davis.log",
    shell:
        "{PY} -m gan_core.data.embedded_cli davis --out {output} --height {params.cfg[height]} "
        "--width {params.cfg[width]} --n-frames {params.cfg[n_frames]} --seed {params.cfg[seed]} > {log} 2>&1"


rule first_frame_pair:
    input:
        lambda wc: davis_input(wc.year),
    output:
        image=f"{R}/data/pairs/davis{{year}}/{{seq}}/image.png",
        mask=f"{R}/data/pairs/davis{{year}}/{{seq}}/mask.png",
    params:
        root=lambda wc: davis_root(wc.year),
        mode=lambda wc: davis_mode(wc.year),
    log:
        f"{R}/logs/first_frame_pair/davis{{year}}/{{seq}}.log",
    shell:
        "{PY} -m gan_core.data.pair_cli --davis-root {params.root} --sequence {wildcards.seq} "
        "--mode {params.mode} --out-image {output.image} --out-mask {output.mask} > {log} 2>&1"
