# Shared helpers: the effective configuration, paths and input functions.
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from snakemake.exceptions import WorkflowError

import gan_core.config as gc_config
from gan_core.errors import ReproError

try:
    gc_config.check_config_files(workflow.configfiles)  # duplicate keys, which Snakemake's loader drops silently
    CFG = gc_config.resolve(config)
    THESIS = gc_config.thesis_tables()
except ReproError as exc:
    raise WorkflowError(str(exc))

PRESET = CFG["preset"]
R = f"{CFG['results_dir']}/{PRESET}"
RES = CFG["resources_dir"]
PY = sys.executable
# Libraries that look in the torch hub cache find the verified files under resources/ (nothing
# downloads through it: metric and model code load local files only).
os.environ.setdefault("TORCH_HOME", str(Path(RES, "torch").resolve()))
DEVICE = CFG.get("device", "auto")
THREADS = CFG.get("threads", 2)


wildcard_constraints:
    year="2016|2017|2017testdev",
    collection=r"davis2016|davis2017|davis2017testdev|coco20i_fold[0-3]",
    seed=r"\d+",
    seq=r"[A-Za-z0-9_.\-]+",
    variant=r"[A-Za-z0-9_\-]+",
    selection=r"[A-Za-z0-9_\-]+",
    aug="none|standard|synthetic|both",
    system="osvos|stm",
    pool=r"real|[A-Za-z0-9_\-]+\+[A-Za-z0-9_\-]+",


# Table builders (name -> function(row, column, seed) -> cell) and a footer sentence per builder,
# filled by the rule files that own them; read by tables.smk.
BUILDER_NOTES = {}


def as_json(obj):
    """Compact JSON for --params arguments (quoted in shell with :q)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def log_path(name):
    return f"{R}/logs/{name}.log"
