"""Helpers shared by CLI sub-commands: output files written atomically, common options."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..errors import SimhwError


def write_output(text: str, out: str | None) -> None:
    """Print ``text`` or write it to ``out`` atomically (nothing half-written on failure)."""
    if not out or out == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    write_bytes_atomic(Path(out), text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise SimhwError(f"{path}: the folder {path.parent} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=".simhw-", dir=str(path.parent or "."))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SimhwError(f"{path}: cannot write ({exc.strerror}).") from None


def add_set_option(parser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a workload field, e.g. --set seq_len=8192 --set parallelism.tp=4")


def add_format_option(parser, choices=("table", "json", "csv")) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help="output format")
    parser.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout")


def add_train_share_option(parser) -> None:
    """``--train-share``: the share of rows a fit uses; the rest are held back to report the error."""
    parser.add_argument("--train-share", type=_share, default=0.7, metavar="SHARE",
                        help="share of rows used for fitting, 0.05-0.95 (default 0.7)")


def _share(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 0.95:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a share between 0.05 and 0.95")
    return value


def add_list_show(sub, name: str, help_text: str, description: str, list_help: str, show_help: str,
                  name_help: str, run) -> None:
    """A registry browser: ``simhw NAME list`` and ``simhw NAME show NAME``, each with --format
    table|json and -o; ``args.<name>_command`` is the action, ``args.<name>_parser`` the parser."""
    p = sub.add_parser(name, help=help_text, description=description)
    actions = p.add_subparsers(dest=f"{name}_command", metavar="ACTION")
    add_format_option(actions.add_parser("list", help=list_help), ("table", "json"))
    show = actions.add_parser("show", help=show_help)
    show.add_argument("name", metavar="NAME", help=name_help)
    add_format_option(show, ("table", "json"))
    p.set_defaults(run=run, **{f"{name}_parser": p})

