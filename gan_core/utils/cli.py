"""The one runner behind every ``main()`` of the project's command lines.

``main(argv)`` of a command-line module builds its ``argparse`` parser and returns
``run_cli(parser, argv)``; the runner does the rest, the same way for every command:

1. logging set-up (INFO, one format) -- a no-op when the root logger already has handlers;
2. ``args = parser.parse_args(argv)`` -- argparse errors and ``--help`` exit through ``SystemExit``
   as usual (status 2 and 0);
3. the command: ``args.func(args)``. ``func`` is set with ``set_defaults(func=...)``: on each
   sub-parser of a command with sub-commands, or on the parser itself for a single command
   (a parent default is also the fallback for sub-commands that set none);
4. the exit status: **an int returned by func is the exit status** (``bool`` excepted);
   anything else -- ``None``, or a result object such as a metric record -- means 0;
5. a :class:`~gan_core.errors.ReproError` raised by ``validate`` or ``func`` is printed as one line
   ``error: <message>`` on stderr (followed by the exception's notes, ``BaseException.add_note``,
   one per line, e.g. a hint of where a file is expected) and returns ``error_code`` (default 2).
   ``error_code=None`` lets the ReproError propagate instead (commands that library code and tests
   call as functions and that must raise, e.g. ``python -m gan_core.metrics``). Any other exception
   always propagates: it is a bug, and its traceback is the useful report.

``validate(args)``, if given, runs after parsing and before ``func``, inside the same error
handling: for cross-argument checks that argparse cannot express.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable, Sequence

from ..errors import ReproError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def exit_status(result: Any) -> int:
    """Rule 4: an int returned by a command is its exit status; anything else (None included) is 0."""
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def report_error(exc: ReproError) -> None:
    """Rule 5: ``error: <message>`` on stderr, then the exception's notes."""
    print(f"error: {exc}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):
        print(note, file=sys.stderr)


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, *,
            error_code: int | None = 2,
            validate: Callable[[argparse.Namespace], None] | None = None) -> int:
    """Parse ``argv``, run ``args.func(args)`` and return the exit status (see the module docstring)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    args = parser.parse_args(None if argv is None else list(argv))
    func = getattr(args, "func", None)
    if func is None:
        raise TypeError(f"{parser.prog}: the parser sets no 'func' default; use parser.set_defaults(func=...)")
    try:
        if validate is not None:
            validate(args)
        return exit_status(func(args))
    except ReproError as exc:
        if error_code is None:
            raise
        report_error(exc)
        return error_code
