"""Requests for the serving simulation (sim/serving.py): a Poisson stream of fixed lengths, or a
request trace read from CSV."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Request:
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    cached_tokens: int = 0         # leading prompt tokens already in the replica's KV cache (an earlier turn
                                   # of the same conversation, kept by prefix caching): not prefilled again


def poisson_requests(n: int, rate_per_s: float, prompt_tokens: int, output_tokens: int,
                     seed: int = 0, cached_tokens: int = 0, range_ratio: float = 0.0) -> tuple[Request, ...]:
    """``n`` requests arriving as a Poisson process (exponential gaps); a rate of 0 puts every
    arrival at time 0 (an offline batch). Lengths are fixed, or with ``range_ratio`` r drawn
    uniformly from [L (1 - r), L (1 + r)] for each request's prompt and output, as vLLM's
    benchmark_serving draws its random dataset (--random-range-ratio). ``cached_tokens``: each
    prompt's leading tokens already cached (later turns of conversations)."""
    from ..errors import WorkloadError

    if not 0 <= range_ratio < 1:
        raise WorkloadError(f"serve: the length range ratio {range_ratio} must be from 0 to below 1 (lengths drawn from "
                            f"L (1 - r) to L (1 + r)).")
    low = int(prompt_tokens * (1 - range_ratio))
    if not 0 <= cached_tokens < max(1, low):
        raise WorkloadError(f"serve: cached tokens ({cached_tokens}) must be from 0 to the shortest prompt's {max(1, low)} "
                            f"- 1: at least one prompt token is new.")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_per_s, n) if rate_per_s > 0 else np.zeros(n)
    times = np.cumsum(gaps) - gaps[0]

    def lengths(mean: int) -> np.ndarray:
        if not range_ratio:
            return np.full(n, mean)
        lo, hi = max(1, int(mean * (1 - range_ratio))), max(1, int(mean * (1 + range_ratio)))
        return rng.integers(lo, hi + 1, n)
    prompts, outputs = lengths(prompt_tokens), lengths(output_tokens)
    return tuple(Request(float(t), int(p), int(o), cached_tokens) for t, p, o in zip(times, prompts, outputs))


def read_request_trace(path) -> tuple[Request, ...]:
    """Requests from a CSV with columns ``prompt_tokens``, ``output_tokens`` and optionally
    ``arrival_s`` (seconds; default: all at 0) and ``cached_tokens`` (a multi-turn conversation's
    earlier turns, still cached: default 0). Errors name the file, line and column."""
    import csv
    from pathlib import Path

    from ..errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found.")
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"prompt_tokens", "output_tokens"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; a request trace has "
                            f"prompt_tokens, output_tokens and optionally arrival_s.")
        for line, row in enumerate(reader, start=2):
            try:
                req = Request(float(row.get("arrival_s") or 0.0), int(row["prompt_tokens"]), int(row["output_tokens"]),
                              int(row.get("cached_tokens") or 0))
            except (TypeError, ValueError):
                raise DataError(f"{path}:{line}: prompt_tokens, output_tokens and cached_tokens must be whole numbers "
                                f"and arrival_s a number of seconds.") from None
            if req.prompt_tokens < 1 or req.output_tokens < 1 or req.arrival_s < 0 or not math.isfinite(req.arrival_s):
                raise DataError(f"{path}:{line}: token counts must be at least 1 and arrival_s a time ≥ 0.")
            if not 0 <= req.cached_tokens < req.prompt_tokens:
                raise DataError(f"{path}:{line}: cached_tokens ({req.cached_tokens}) must be from 0 to prompt_tokens - 1 "
                                f"({req.prompt_tokens - 1}): at least one prompt token is new.")
            out.append(req)
    if not out:
        raise DataError(f"{path}: no requests.")
    return tuple(sorted(out, key=lambda r: r.arrival_s))
