"""End-to-end test of the SLURM profile on a real single-node SLURM cluster.

Brings up a throw-away cluster with ``workflow/scripts/slurm-up --accounting`` (slurmctld, slurmd,
munge, MariaDB + slurmdbd, two fake GPUs), copies the repository into a temporary directory and runs
there, verbatim as a user would::

    snakemake --profile slurm table_6_5 --config preset=tiny

Two additions on the command line: ``--slurm-init-seconds-before-status-checks 2`` (how soon the plugin
first polls ``sacct``; the profile's 40 s would only make the test slower) and ``--configfile`` with one
downstream seed instead of the tiny preset's two (70 jobs instead of 114; every rule of the table still runs
through SLURM, and the two-seed mean +- std is what README command 1 produces; ``SLURM_TEST_ALL_SEEDS=1``
keeps both). Site settings
are given the way users give them, through the environment (THESIS_SLURM_ACCOUNT,
THESIS_SLURM_GPU_PARTITION), so the account validation and GPU-partition routing are exercised too.

Opt-in: runs only as root on Debian with apt-get and ``RUN_SLURM_TESTS=1``. Measured on a 2-core
Debian 12 machine: bring-up ~11 s (+ ~3 s for apt-get install of slurm/munge/MariaDB/slurmdbd on a
machine with warm package lists; allow a minute on a cold one), tear-down ~12 s, plus the workflow
run itself (a 5-job stand-in DAG took ~34 s; each DAG level costs a few seconds of polling).
The cheap profile checks in this file need no cluster and always run. Environment knobs:

* ``SLURM_TEST_TARGET``   Snakemake target (default ``table_6_5``).
* ``SLURM_TEST_OUTPUTS``  comma-separated files (relative to the work directory) that must exist
  afterwards; default: the table's .csv and .md for ``table_<id>`` targets.
* ``SLURM_TEST_TIMEOUT``  seconds for the snakemake run (default 3000); it is killed afterwards.
* ``SLURM_TEST_SOURCE``   directory (a git work tree) to copy instead of this repository, for
  developing the test against a small stand-in workflow.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
# Rules that the profile sends to a GPU (its set-resources with gpu: 1).
GPU_RULES = ("train_osmis", "sample_osmis", "sifid_filter", "osvos_parent", "osvos_finetune", "stm_run",
             "stm_train_tiny", "train_sivgan", "sample_sivgan", "sivgan_metrics", "synthesis_sifid",
             "synthesis_lpips", "synthesis_mask_alignment", "repri_evaluate", "repri_train_tiny", "train_oasis",
             "sample_oasis", "sample_oasis_multi", "oasis_fid", "oasis_segmenter", "oasis_miou_raw")
# GPU rules whose GPU count is the rule's own `resources: gpu=` (from config.yaml), not the profile's.
RULE_SET_GPU = ("train_oasis",)
TEST_ACCOUNT = "testacct"  # created by slurm-up --accounting (SLURM_TEST_ACCOUNT)
TARGET = os.environ.get("SLURM_TEST_TARGET", "table_6_5")
RUN_TIMEOUT = int(os.environ.get("SLURM_TEST_TIMEOUT", "3000"))



def _arith(expr, attempt):
    """Evaluate a profile resource expression such as "4000 * attempt" or "min(60 * attempt, 2880)"
    without eval: only integer literals, `attempt`, + - * // and min/max calls are accepted."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id == "attempt":
            return attempt
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            return {"min": min, "max": max}[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"unsupported expression in profile: {ast.dump(node)}")

    return ev(ast.parse(str(expr), mode="eval"))

def _skip_reason() -> str | None:
    if os.environ.get("RUN_SLURM_TESTS") != "1":
        return "SLURM integration test is opt-in: set RUN_SLURM_TESTS=1 (needs root, Debian, apt-get)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "SLURM integration test needs root (it starts slurmctld/slurmd/munged, writes /etc/slurm)"
    if not Path("/etc/debian_version").is_file():
        return "SLURM integration test needs Debian (it installs Debian's slurm packages)"
    if shutil.which("apt-get") is None:
        return "SLURM integration test needs apt-get"
    if shutil.which("timeout") is None:
        return "SLURM integration test needs coreutils' timeout"
    return None


_REASON = _skip_reason()


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster with accounting; torn down (always) after the module."""
    root = tempfile.mkdtemp(prefix="slt", dir="/tmp")  # short: MariaDB/munge socket paths
    os.chmod(root, 0o755)  # MariaDB runs as user mysql
    env = dict(os.environ, SLURM_TEST_ROOT=root, SLURM_TEST_ACCOUNT=TEST_ACCOUNT)
    # The node advertises 12 CPUs (two 4-CPU GPU jobs on the two fake GPUs + 4 CPU jobs), not slurm-up's default
    # 32: each SLURM job runs its own snakemake (~0.4 GB) beside the job (0.3-0.9 GB), and ~30 jobs at once on
    # a 2-core, 24 GB machine ran it out of memory (the kernel's OOM killer took pytest itself).
    env.setdefault("SLURM_TEST_CPUS", "12")
    try:
        t0 = time.monotonic()
        up = _run([str(SCRIPTS / "slurm-up"), "--accounting"], env=env, timeout=900)
        bring_up_s = time.monotonic() - t0
        assert up.returncode == 0, f"slurm-up failed (rc {up.returncode}):\n{up.stdout}\n{up.stderr}"
        print(f"slurm-up took {bring_up_s:.1f} s")
        yield {"root": root, "env": env, "bring_up_s": bring_up_s}
    finally:
        if shutil.which("scancel"):
            _run(["scancel", "--user", getpass.getuser()], timeout=60)
        down = _run([str(SCRIPTS / "slurm-down"), "--purge"], env=env, timeout=300)
        if down.returncode != 0:
            print(f"slurm-down failed (rc {down.returncode}):\n{down.stdout}\n{down.stderr}")


def _copy_worktree(src: Path, dst: Path) -> None:
    """Copy git's tracked + untracked-not-ignored files of ``src`` to ``dst`` (symlinks kept)."""
    listing = _run(["git", "-C", str(src), "ls-files", "-co", "--exclude-standard", "-z"], timeout=120)
    assert listing.returncode == 0, f"git ls-files failed in {src}: {listing.stderr}"
    for rel in filter(None, listing.stdout.split("\0")):
        s, d = src / rel, dst / rel
        if not os.path.lexists(s):  # tracked but deleted in the work tree
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_symlink():
            os.symlink(os.readlink(s), d)
        elif s.is_file():
            shutil.copy2(s, d)


def _expected_outputs() -> list[str]:
    listed = os.environ.get("SLURM_TEST_OUTPUTS")
    if listed:
        return [p.strip() for p in listed.split(",") if p.strip()]
    if TARGET.startswith("table_"):
        return [f"results/tiny/tables/{TARGET}.{ext}" for ext in ("csv", "md")]
    return []


def _sacct_jobs() -> list[dict[str, str]]:
    fields = ["JobID", "State", "Account", "Partition", "AllocTRES", "Comment"]
    out = _run(["sacct", "-X", "-n", "-P", "-a", "-o", ",".join(fields)], timeout=60)
    assert out.returncode == 0, f"sacct failed: {out.stderr}"
    return [dict(zip(fields, line.split("|"))) for line in out.stdout.splitlines() if line.strip()]


SITE_VARS = ("THESIS_SLURM_ACCOUNT", "THESIS_SLURM_PARTITION", "THESIS_SLURM_GPU_PARTITION",
             "THESIS_SLURM_MAX_RUNTIME", "SBATCH_ACCOUNT", "SBATCH_PARTITION")


def _parse_profile(monkeypatch, **site) -> dict:
    """The profile as Snakemake's own profile parser reads it, with the given site variables."""
    from snakemake.profiles import ProfileConfigFileParser

    for name in SITE_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in site.items():
        monkeypatch.setenv(name, value)
    with open(PROFILE) as fh:
        return dict(ProfileConfigFileParser().parse(fh))


def _set_resources(parsed: dict) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in parsed["set-resources"]:
        rule, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        out.setdefault(rule, {})[key] = value
    return out


def test_profile_without_site_settings_passes_no_account_or_partition(monkeypatch):
    parsed = _parse_profile(monkeypatch)
    assert parsed["executor"] == "slurm"
    assert int(parsed["retries"]) == 2
    text = " ".join(parsed["default-resources"] + parsed["set-resources"])
    assert "slurm_account" not in text and "slurm_partition" not in text
    assert "$" not in text, "an unexpanded environment variable would reach sbatch"
    res = _set_resources(parsed)
    assert set(GPU_RULES) <= set(res)
    for rule in GPU_RULES:
        assert res[rule].get("gpu") == ("1" if rule not in RULE_SET_GPU else None), rule
        assert int(res[rule]["cpus_per_gpu"]) >= 1, rule
        assert "mem_mb" in res[rule] and "runtime" in res[rule], rule


def test_profile_resources_name_existing_rules():
    """A typo in a set-resources key would silently send that rule to a CPU node."""
    import re

    import yaml

    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^(?:rule|checkpoint)\s+([A-Za-z0-9_]+)\s*:", smk.read_text(), re.M))
    profile = yaml.safe_load(PROFILE.read_text())
    unknown = sorted(set(profile["set-resources"]) - rules)
    assert not unknown, f"profile set-resources names no rule: {unknown}"
    assert set(GPU_RULES) <= set(profile["set-resources"])


def test_profile_site_settings_from_environment(monkeypatch):
    parsed = _parse_profile(monkeypatch, THESIS_SLURM_ACCOUNT="proj42", THESIS_SLURM_PARTITION="cpu",
                            THESIS_SLURM_GPU_PARTITION="all", THESIS_SLURM_MAX_RUNTIME="4320")
    assert "slurm_account='proj42'" in parsed["default-resources"]
    assert "slurm_partition='cpu'" in parsed["default-resources"]
    res = _set_resources(parsed)
    # quoted, so that a partition named like a Python builtin ("all") stays a string
    assert all(res[rule]["slurm_partition"] == "'all'" for rule in GPU_RULES)
    assert res["train_osmis"]["runtime"] == "4320"
    # sbatch's own variables are the fallback; the GPU partition falls back to the CPU one
    parsed = _parse_profile(monkeypatch, SBATCH_ACCOUNT="acc2", SBATCH_PARTITION="p2")
    assert "slurm_account='acc2'" in parsed["default-resources"]
    assert _set_resources(parsed)["osvos_finetune"]["slurm_partition"] == "'p2'"


def test_profile_resource_expressions_scale_with_attempt(monkeypatch):
    """Evaluate the profile's resource strings the way Snakemake does for attempts 1..3."""
    parsed = _parse_profile(monkeypatch)
    default = dict(item.split("=", 1) for item in parsed["default-resources"])
    mems = [_arith(default["mem_mb"], a) for a in (1, 2, 3)]
    assert mems == [4000, 8000, 12000]
    runtimes = [_arith(_set_resources(parsed)["osvos_finetune"]["runtime"], a) for a in (1, 2, 3)]
    assert runtimes == [180, 360, 540]
    capped = [_arith(_set_resources(parsed)["osvos_parent"]["runtime"], a) for a in (1, 2, 3)]
    assert capped == [1440, 2880, 2880]  # capped at THESIS_SLURM_MAX_RUNTIME's default (48 h)


def test_profile_file_is_reachable_as_slurm():
    """`--profile slurm` resolves ./slurm: it must be a relative symlink to the profile folder."""
    link = REPO / "slurm"
    assert link.is_symlink(), "./slurm must be a symlink to workflow/profiles/slurm"
    assert not os.path.isabs(os.readlink(link)), "./slurm must be a relative symlink"
    assert (link / "config.yaml").resolve() == PROFILE.resolve()


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
@pytest.mark.timeout(RUN_TIMEOUT + 1200)
def test_workflow_runs_through_slurm(slurm_cluster):
    src = Path(os.environ.get("SLURM_TEST_SOURCE", REPO)).resolve()
    work = Path(tempfile.mkdtemp(prefix="slurm-wf-", dir="/tmp"))
    try:
        _copy_worktree(src, work)
        assert (work / "slurm").is_symlink(), "the copy lacks the ./slurm profile symlink"

        bindir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env.update(
            PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]),
            PYTHONPATH=os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")])),
            THESIS_SLURM_ACCOUNT=TEST_ACCOUNT,
            THESIS_SLURM_GPU_PARTITION="gpu",
        )
        env.pop("THESIS_SLURM_PARTITION", None)
        extra = []
        if not os.environ.get("SLURM_TEST_ALL_SEEDS"):
            one_seed = work / "slurm-test-one-seed.yaml"
            one_seed.write_text("presets:\n  tiny:\n    seeds:\n      downstream: [0]\n")
            extra = ["--configfile", str(one_seed)]
        cmd = [
            "timeout", "-k", "30", str(RUN_TIMEOUT),
            sys.executable, "-m", "snakemake", "--profile", "slurm", TARGET, *extra,
            # the target goes BEFORE --config, which would otherwise swallow it as a key=value pair
            "--config", "preset=tiny",
            "--slurm-init-seconds-before-status-checks", "2",
        ]  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=work, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        run_s = time.monotonic() - t0
        print(f"snakemake --profile slurm {TARGET}: rc {proc.returncode} after {run_s:.1f} s "
              f"(bring-up {slurm_cluster['bring_up_s']:.1f} s)")
        assert proc.returncode == 0, (
            f"snakemake exited {proc.returncode} after {run_s:.0f} s"
            + (" (killed by timeout)" if proc.returncode in (124, 137) else "")
            + f"; last output:\n{proc.stdout[-6000:]}"
        )

        for rel in _expected_outputs():
            path = work / rel
            assert path.is_file() and path.stat().st_size > 0, f"missing or empty output {rel}"

        jobs = _sacct_jobs()
        rule_jobs = [j for j in jobs if j["Comment"].startswith("rule_")]
        assert rule_jobs, f"no Snakemake job went through SLURM (sacct: {jobs})"
        assert any(j["State"] == "COMPLETED" for j in rule_jobs)
        for j in rule_jobs:
            assert j["Account"] == TEST_ACCOUNT, f"job without the profile's account: {j}"
        gpu_jobs = [j for j in rule_jobs if j["Comment"].startswith(tuple(f"rule_{r}" for r in GPU_RULES))]
        assert gpu_jobs, f"no GPU rule ({', '.join(GPU_RULES)}) was submitted to SLURM: {rule_jobs}"
        for j in gpu_jobs:
            assert "gres/gpu=1" in j["AllocTRES"], f"GPU rule without a GPU allocation: {j}"
            assert j["Partition"] == "gpu", f"GPU rule not routed to the GPU partition: {j}"
        for j in rule_jobs:
            if j not in gpu_jobs:
                assert "gres/gpu" not in j["AllocTRES"], f"CPU rule holding a GPU: {j}"
        # every job the run left in SLURM ended; failures are allowed only if a retry succeeded
        assert all(j["State"] not in ("PENDING", "RUNNING") for j in rule_jobs), rule_jobs
    finally:
        _run(["scancel", "--user", getpass.getuser()], timeout=60)
        shutil.rmtree(work, ignore_errors=True)
