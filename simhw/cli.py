"""The ``simhw`` command: parse arguments, call one library function, render.

Each sub-command lives in ``simhw/commands/<name>.py`` with ``register(subparsers)`` and
``run(args) -> int``; heavy modules are imported inside ``run`` so start-up stays light. User
errors (:class:`~simhw.errors.SimhwError`) print one line to stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order `simhw --help` lists them.
COMMANDS = ("estimate", "compare", "sweep", "plan", "hw", "models", "trace", "simulate", "serve", "schedule",
            "validate", "calibrate", "engine", "footprint", "report")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse errors: one line, exit 2, like every user error
        self.print_usage(sys.stderr)
        sys.stderr.write(f"simhw: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="simhw", description="What will this ML workload cost on that machine?")
    parser.add_argument("--version", action="version", version=f"simhw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"simhw.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"simhw.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import SimhwError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    import warnings
    from .errors import SimhwWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SimhwWarning)
        try:
            code = int(args.run(args) or 0)
        except SimhwError as exc:
            sys.stderr.write(f"simhw: error: {exc}\n")
            code = 2
        except BrokenPipeError:
            return 0
        except KeyboardInterrupt:
            return 130
    seen = set()
    for w in caught:       # input simhw only approximates: once each, after the output
        if not issubclass(w.category, SimhwWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            sys.stderr.write(f"simhw: warning: {w.message}\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
