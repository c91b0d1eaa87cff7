"""Helpers for tests that dry-run the Snakemake workflow (imported by the test_workflow* files)."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake_dry(*args: str) -> subprocess.CompletedProcess:
    """``snakemake -n --nolock ARGS`` in the repository root (no lock, so dry runs may overlap)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


def job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    counts = {}
    for line in stdout.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_]+)\s+(\d+)\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def fake_davis(resources: Path, n16: int, n17: int) -> None:
    """A DAVIS-2017 tree with only the sequence lists and the fetch marker (enough to plan)."""
    davis = resources / "davis2017_trainval_480p" / "DAVIS"
    for year, n in (("2016", n16), ("2017", n17)):
        d = davis / "ImageSets" / year
        d.mkdir(parents=True, exist_ok=True)
        (d / "val.txt").write_text("\n".join(f"seq{i:02d}" for i in range(n)) + "\n")
        (d / "train.txt").write_text("train00\n")
    (resources / "davis2017_trainval_480p" / ".complete").write_text("test marker\n")
