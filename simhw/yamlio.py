"""Strict reading of YAML mappings: unknown keys, wrong types and missing files are user errors.

Shared by the spec, workload and plan loaders so that every message has the same shape:
``<file>: <yaml.path>: what was wrong; what is allowed``.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import SimhwError


def read_yaml(path: Path, error: type[SimhwError]) -> Any:
    """Read a YAML file; missing files and syntax errors raise ``error`` with the path."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise error(f"{path}: file not found.")
    if path.is_dir():
        raise error(f"{path}: is a folder, expected a YAML file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the file ({exc.__class__.__name__}).") from None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None


def check_keys(data: Any, allowed: Iterable[str], where: str, error: type[SimhwError],
               required: Iterable[str] = ()) -> Mapping[str, Any]:
    """Check that ``data`` is a mapping with only ``allowed`` keys and every ``required`` key."""
    allowed = tuple(allowed)
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected a mapping with keys {', '.join(allowed)}; got {type(data).__name__}.")
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            near = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise error(f"{where}: unknown key '{key}'{near}; allowed keys: {', '.join(allowed)}.")
    for key in required:
        if key not in data:
            raise error(f"{where}: missing required key '{key}'.")
    return data


def join(where: str, key: str) -> str:
    """``"file.yaml: a.b"`` + ``"c"`` -> ``"file.yaml: a.b.c"``."""
    return f"{where}.{key}" if not where.endswith(": ") and ": " in where else f"{where}{key}"


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or ''."""
    hint = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{hint[0]}'?)" if hint else ""
