"""The one command-line runner (gan_core/utils/cli.py) and the mains that use it."""
from __future__ import annotations

import argparse
import importlib

import pytest

from gan_core.errors import ConfigError, DataError, ReproError
from gan_core.utils.cli import run_cli


def _parser(func, subcommand: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toy")
    if subcommand:
        sub = p.add_subparsers(dest="command", required=True)
        s = sub.add_parser("go")
        s.add_argument("--x", type=int, default=0)
        s.set_defaults(func=func)
    else:
        p.add_argument("--x", type=int, default=0)
        p.set_defaults(func=func)
    return p


def _raise_data_error(args):
    raise DataError("some/file.png", f"is broken (x={args.x})")


def test_repro_error_is_one_line_on_stderr_and_status_2(capsys):
    assert run_cli(_parser(_raise_data_error), ["--x", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["error: some/file.png: is broken (x=3)"]


def test_error_code_and_notes(capsys):
    def func(args):
        exc = ConfigError("bad value")
        exc.add_note("hint: look here")
        raise exc

    assert run_cli(_parser(func), [], error_code=1) == 1
    assert capsys.readouterr().err.splitlines() == ["error: bad value", "hint: look here"]


def test_error_code_none_lets_the_repro_error_propagate(capsys):
    with pytest.raises(DataError, match="is broken"):
        run_cli(_parser(_raise_data_error), [], error_code=None)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("returned, status", [(None, 0), (0, 0), (3, 3), (7, 7), ({"metric": 1.0}, 0), (True, 0)])
@pytest.mark.parametrize("subcommand", [False, True])
def test_return_value_rule(returned, status, subcommand):
    seen = []

    def func(args):
        seen.append(args.x)
        return returned

    argv = (["go"] if subcommand else []) + ["--x", "5"]
    assert run_cli(_parser(func, subcommand), argv) == status
    assert seen == [5]


def test_other_exceptions_propagate():
    def func(args):
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run_cli(_parser(func), [])


def test_validate_runs_first_inside_the_error_handling(capsys):
    calls = []

    def validate(args):
        calls.append("validate")
        if args.x < 0:
            raise ConfigError("--x must be >= 0")

    def func(args):
        calls.append("func")

    assert run_cli(_parser(func), ["--x", "1"], validate=validate) == 0
    assert calls == ["validate", "func"]
    assert run_cli(_parser(func), ["--x", "-1"], validate=validate) == 2
    assert calls == ["validate", "func", "validate"]
    assert capsys.readouterr().err.strip() == "error: --x must be >= 0"


def test_parser_without_func_is_a_programming_error():
    with pytest.raises(TypeError, match="set_defaults"):
        run_cli(argparse.ArgumentParser(prog="nofunc"), [])


def test_argparse_errors_still_exit_2():
    with pytest.raises(SystemExit) as ei:
        run_cli(_parser(lambda a: None), ["--x", "not-an-int"])
    assert ei.value.code == 2


def test_downstream_reexport_is_the_same_runner():
    from downstream import cli_common

    assert cli_common.run_cli is run_cli
    assert issubclass(DataError, ReproError)


MAIN_MODULES = [
    "gan_core.bench.flops", "gan_core.bench.throughput",
    "gan_core.data.coco_cli", "gan_core.data.embedded_ade_cli", "gan_core.data.embedded_cli",
    "gan_core.data.fetch_cli", "gan_core.data.lvis_cli", "gan_core.data.pair_cli", "gan_core.data.single_image_cli",
    "gan_core.metrics.batch_cli", "gan_core.metrics.cli", "gan_core.metrics.external_seg_cli",
    "gan_core.metrics.seg_cli", "gan_core.metrics.sifid_cli",
    "gan_core.report.compute_plan", "gan_core.report.figures", "gan_core.report.oasis_figures_cli",
    "gan_core.report.qualitative", "gan_core.report.sivgan_figure", "gan_core.report.tables",
    "gan_core.report.timings",
    "gan_core.train.oasis_cli", "gan_core.train.osmis_cli",
    "downstream.deeplab_cli", "downstream.osvos_cli", "downstream.repri_cli", "downstream.stm_cli",
]


@pytest.mark.parametrize("name", MAIN_MODULES)
def test_every_main_builds_its_parser(name, capsys):
    mod = importlib.import_module(name)
    assert callable(mod.main)
    with pytest.raises(SystemExit) as ei:
        mod.main(["--help"])
    assert ei.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert mod.run_cli is run_cli  # the module runs through the one runner
