"""Run several ``python -m gan_core.metrics`` subcommands in one process (torch and the networks'
code are imported once; the SIV-GAN workflow scores each pool with four metrics this way).

    python -m gan_core.metrics.batch_cli --commands '[["sifid", "--fake", ...], ["lpips-diversity", ...]]'

Each inner list is exactly the argument list of ``python -m gan_core.metrics``; they run in order
and the first failure stops the run with its error (exit status 2).
"""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError
from ..utils.cli import run_cli
from . import cli


def parse_commands(text: str) -> list[list[str]]:
    try:
        cmds = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--commands is not valid JSON: {exc}") from exc
    if not isinstance(cmds, list) or not all(isinstance(c, list) and c and all(isinstance(a, str) for a in c)
                                             for c in cmds):
        raise ConfigError("--commands must be a JSON list of non-empty lists of strings")
    return cmds


def _command(args: argparse.Namespace) -> int:
    for cmd in parse_commands(args.commands):
        rc = cli.main(cmd)  # raises the command's ReproError (reported by run_cli below, status 2)
        if rc:
            return rc
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.metrics.batch_cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", required=True, help="JSON list of argument lists of python -m gan_core.metrics")
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
