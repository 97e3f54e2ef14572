"""The measurement CSV: one row per measured kernel, ``kind`` + shape columns + ``measured_s``.

Columns (unused cells empty; extra columns are ignored):

=============  =============================================================================
kind           gemm | attention | collective | elementwise | norm | softmax | copy | scan
measured_s     measured time of one execution, seconds
m, n, k        GEMM: C[m,n] = A[m,k]·B[k,n]; ``batch`` (optional) for batched GEMMs
dtype          fp16, bf16, fp32, fp8, ... (default bf16)
batch, seq_q, seq_kv, heads, kv_heads, head_dim, causal
               attention (FlashAttention): decode has seq_q = 1; causal true/false
op, bytes, ranks, ranks_per_node
               collective: all_reduce | all_gather | reduce_scatter | all_to_all | send_recv, or
               custom_all_reduce (a serving engine's own NVLink all-reduce, vLLM's
               custom_all_reduce: cost/comm.py; NCCL's pricing where the engine hands it to NCCL);
               bytes of the full buffer (nccl-tests convention); ranks_per_node defaults to all
               ranks in one node
elements, reads, writes, op
               elementwise / norm / softmax: tensor elements; reads and writes in units of
               ``elements`` (default 1 and 1); an elementwise row may name its function in
               ``op`` (add, mul, gelu, ...: workload/functions.py gives its FLOPs per element)
op, bytes, pinned
               copy: h2d | d2h over the host link (PCIe); pinned true/false (pageable copies
               are staged through a pinned buffer: host_pageable_fraction of the pinned rate)
batch, seq_q, heads, kv_heads, head_dim, op
               scan: a recurrent layer's chunked scan (workload/mixers.py), op gated_deltanet
               (default; Qwen3-Next's linear attention) or mamba2; heads = value heads, kv_heads =
               key heads (Mamba-2: groups); head_dim = key and value widths; seq_q = 1 is a decode
               step (one state read and written per sequence and head)
paged          attention: true when the KV cache is paged (a block table; serving engines), which
               FlashAttention-2 serves with its split-KV kernel (cost/attention.py)
kv_cache_write attention: true when the measured op also copies the new K/V into a paged
               cache (serving engines)
kv_append      attention: true when the kernel itself appends the new K/V to the cache
               (flash_attn_with_kvcache given k and v): every CTA copies the new rows of its key
               range, once per q-block and per head of a GQA group (cost/roofline.py)
op, row        norm / softmax: the PyTorch op (layernorm, rmsnorm, layernorm_backward,
               rmsnorm_backward; softmax, log_softmax, softmax_backward, log_softmax_backward) and
               the elements of the row it normalises (the last dim); with both, the row is priced by
               the CUDA kernel PyTorch dispatches for that width (cost/rowwise.py: occupancy and
               load chains); without ``row``, by its bytes (a fused or compiled kernel)
load_bytes     elementwise / norm / softmax: bytes one thread loads at a time when the kernel
               keeps a single scalar load in flight per thread (e.g. 2 for vLLM's 2023 fp16
               RMSNorm); such kernels are latency-bound (cost/latency.py). Empty: vectorised
fresh_reads    elementwise / norm / softmax: how many of the ``reads`` input tensors the kernel
               just before wrote (e.g. a residual add reading the down projection's output); they
               are read from L2 when they fit in its resident share (cost/roofline.py
               fresh_l2_bytes). Empty: 0, every input from main memory
timing         kernel (default: GPU kernel time), wall (host clock around one eager op:
               adds the spec's ``host_launch_gap``) or compiled (host clock around one call of a
               torch.compile'd function: adds ``host_compiled_call_gap``)
power          the die's state under the power limit (cost/power.py), priced at the DVFS
               clock of the kernel's own draw: burst (default; a benchmark loop of ms to about
               a second, the die near idle temperature), steady (held long enough for the die
               to reach its sustained temperature: FLOPs cost energy.hot_flop_factor more) or
               full (no limit: bursts too short for the controller, or data that barely
               switch, e.g. weights never initialised). An empty cell takes the caller's
               default (simhw validate --power)
power_limited  the older form: true = burst, false = full (``power`` wins when both are given)
a_reuse_bytes, b_reuse_bytes
               gemm: bytes the timed loop touches between two reads of operand A (m x k) / B
               (k x n), when it re-reads the same buffer (e.g. aiconfigurator's six weight
               matrices applied in turn to one input); the operand then stays in L2 when it fits
               (cost/roofline.py l2_hits). Empty: never re-read (a harness rotating input sets)
held_s         burst rows: seconds the board was held at its limit by the timed loop (warm-ups and
               repeats included); the die warms over them (cost/power.py hot_factor). Empty: cool
source, label  free text: the data set, and a name shown for the worst rows
=============  =============================================================================
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..cost.power import POWER_STATES, PowerState
from ..cost.rowwise import ROW_OP_CODES, RowOp
from ..errors import DataError
from ..workload.functions import ELEMENTWISE_FLOPS, function_flops
from ..spec.model import DType
from ..workload.graph import Collective, Op, OpKind, Phase, shape

COLUMNS = ("kind", "measured_s", "m", "n", "k", "dtype", "batch", "seq_q", "seq_kv", "heads", "kv_heads",
           "head_dim", "causal", "kv_cache_write", "kv_append", "paged", "op", "bytes", "ranks", "ranks_per_node", "elements", "reads", "writes",
           "pinned", "load_bytes", "fresh_reads", "row", "a_reuse_bytes", "b_reuse_bytes", "timing", "power", "power_limited", "held_s", "source", "label")
TIMINGS = ("kernel", "wall", "compiled")
KINDS = ("gemm", "attention", "collective", "elementwise", "norm", "softmax", "copy", "scan")
SCANS = ("gated_deltanet", "mamba2")
COPY_OPS = ("h2d", "d2h")
CUSTOM_ALL_REDUCE = "custom_all_reduce"   # an all-reduce row priced as the engine's own kernel (shape key custom)
COLLECTIVES = tuple(c.value for c in Collective) + (CUSTOM_ALL_REDUCE,)
_OPKIND = {"elementwise": OpKind.ELEMENTWISE, "norm": OpKind.NORM, "softmax": OpKind.SOFTMAX}
_FLOPS_PER_ELEMENT = {"elementwise": 1.0, "norm": 5.0, "softmax": 5.0}
COLL_CODE = {c: i for i, c in enumerate(Collective)}   # same codes as workload/transformer.py


@dataclass(frozen=True)
class Measurement:
    """One readable row: the op to cost, the measured time, where it came from."""

    line: int
    kind: str
    measured_s: float
    op: Op
    timing: str = "kernel"
    ranks_per_node: int = 0
    source: str = ""
    label: str = ""
    power: PowerState | None = None     # None: the caller's default (predict.py)
    held_s: float | None = None         # a burst's length at the limit (cost/power.py); None: cool die


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


def _get(row: dict, key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _number(row: dict, key: str, default: float | None = None, positive: bool = True) -> float:
    text = _get(row, key)
    if text == "":
        if default is None:
            raise ValueError(f"'{key}' is empty")
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{key}' = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{key}' = {text!r} must be a finite number")
    if (positive and value <= 0) or value < 0:
        raise ValueError(f"'{key}' = {text!r} must be {'positive' if positive else 'non-negative'}")
    return value


def _bool(row: dict, key: str, default: bool) -> bool:
    text = _get(row, key).lower()
    if text == "":
        return default
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise ValueError(f"'{key}' = {text!r} must be true or false")


def _dtype(row: dict) -> DType:
    text = _get(row, "dtype") or "bf16"
    try:
        return DType.parse(text)
    except ValueError:
        raise ValueError(f"'dtype' = {text!r} is not one of {', '.join(d.value for d in DType)}") from None


def causal_fraction(seq_q: float, seq_kv: float) -> float:
    """Share of the seq_q x seq_kv score matrix a causal kernel computes (queries are the last
    seq_q positions: query i sees seq_kv - seq_q + i + 1 keys)."""
    if seq_q <= 1:
        return 1.0
    sq = min(seq_q, seq_kv)
    return (sq * (seq_kv - sq) + sq * (sq + 1) / 2) / (sq * seq_kv)


def build_op(kind: str, row: dict) -> Op:
    """The simhw op a measurement row describes (raises ValueError with a reason)."""
    dt = _dtype(row)
    e = dt.bytes
    if kind == "gemm":
        m, n, k = (_number(row, c) for c in ("m", "n", "k"))
        b = _number(row, "batch", 1.0)
        reuse = {key: _number(row, col, -1.0, positive=False)
                 for key, col in (("a_reuse", "a_reuse_bytes"), ("b_reuse", "b_reuse_bytes"))}
        return Op("gemm", OpKind.GEMM, Phase.FWD, 0, 2.0 * b * m * n * k, dt, weight_bytes=b * k * n * e,
                  input_bytes=b * m * k * e, output_bytes=b * m * n * e,
                  shape=shape(m=m, n=n, k=k, batch=b, **{key: v for key, v in reuse.items() if v >= 0}))
    if kind == "attention":
        b, sq, skv, h, d = (_number(row, c) for c in ("batch", "seq_q", "seq_kv", "heads", "head_dim"))
        kvh = _number(row, "kv_heads", h)
        if sq > skv:
            raise ValueError(f"seq_q = {sq:g} is larger than seq_kv = {skv:g}")
        causal = _bool(row, "causal", sq > 1) and sq > 1
        full = 4.0 * b * h * sq * skv * d
        flops = full * (causal_fraction(sq, skv) if causal else 1.0)
        q_bytes = b * sq * h * d * e
        return Op("attention", OpKind.ATTENTION, Phase.FWD, 0, flops, dt, model_flops=full,
                  input_bytes=q_bytes + 2 * b * skv * kvh * d * e, output_bytes=q_bytes,
                  shape=shape(batch=b, heads=h, kv_heads=kvh, seq_q=sq, seq_kv=skv, head_dim=d,
                              causal=float(causal), flash=1.0,
                              kv_write=float(_bool(row, "kv_cache_write", False)),
                              kv_append=float(_bool(row, "kv_append", False)),
                              paged=float(_bool(row, "paged", False))))
    if kind == "scan":
        from ..workload.mixers import scan_op
        from ..workload.models import Recurrent
        b, sq, hv, d = (_number(row, c) for c in ("batch", "seq_q", "heads", "head_dim"))
        hk = _number(row, "kv_heads", hv)
        name = (_get(row, "op") or "gated_deltanet").lower()
        if name not in SCANS:
            raise ValueError(f"'op' = {name!r} must be one of {', '.join(SCANS)} for a scan")
        if any(v != int(v) for v in (b, sq, hv, hk, d)) or hv % hk:
            raise ValueError("batch, seq_q, heads, kv_heads and head_dim must be whole numbers, kv_heads dividing heads")
        return scan_op(Recurrent(name), b, sq, hv, hk, d, dt)
    if kind == "collective":
        name = _get(row, "op").lower()
        if name not in COLLECTIVES:
            raise ValueError(f"'op' = {name!r} must be one of {', '.join(COLLECTIVES)}")
        nbytes = _number(row, "bytes")
        ranks = _number(row, "ranks")
        if ranks != int(ranks) or ranks < 2:
            raise ValueError(f"'ranks' = {ranks:g} must be a whole number >= 2")
        custom = name == CUSTOM_ALL_REDUCE
        coll = Collective.ALL_REDUCE if custom else Collective(name)
        okind = OpKind.SEND_RECV if coll is Collective.SEND_RECV else OpKind.COLLECTIVE
        keys = dict(custom=1.0) if custom else {}
        return Op(name, okind, Phase.FWD, 0, 0.0, dt, input_bytes=nbytes, output_bytes=nbytes,
                  shape=shape(collective=COLL_CODE[coll], bytes=nbytes, ranks=int(ranks), scope=0, **keys))
    if kind == "copy":
        name = _get(row, "op").lower()
        if name not in COPY_OPS:
            raise ValueError(f"'op' = {name!r} must be one of {', '.join(COPY_OPS)} for a copy")
        nbytes = _number(row, "bytes")
        return Op(name, OpKind.COPY, Phase.FWD, 0, 0.0, dt, input_bytes=nbytes,
                  shape=shape(bytes=nbytes, direction=float(COPY_OPS.index(name)),
                              pinned=float(_bool(row, "pinned", True))))
    if kind in _OPKIND:
        elements = _number(row, "elements")
        reads, writes = _number(row, "reads", 1.0, positive=False), _number(row, "writes", 1.0, positive=False)
        per = _FLOPS_PER_ELEMENT[kind]
        fn = _get(row, "op").lower()
        if fn and kind == "elementwise":
            if fn not in ELEMENTWISE_FLOPS:
                raise ValueError(f"'op' = {fn!r} must be one of {', '.join(ELEMENTWISE_FLOPS)} for an elementwise row")
            per = function_flops(fn)
        load = _number(row, "load_bytes", 0.0, positive=False)
        if load > 64:
            raise ValueError(f"'load_bytes' = {load:g} must be at most 64 (bytes one thread loads at a time)")
        keys = dict(elements=elements, load_bytes=load) if load else dict(elements=elements)
        fresh = _number(row, "fresh_reads", 0.0, positive=False)
        if fresh > reads:
            raise ValueError(f"'fresh_reads' = {fresh:g} must be at most 'reads' ({reads:g})")
        if fresh:
            keys["fresh_bytes"] = fresh * elements * e
        if kind != "elementwise":
            keys.update(_row_keys(kind, fn, row, elements))
        return Op(kind, _OPKIND[kind], Phase.FWD, 0, per * elements, dt,
                  input_bytes=reads * elements * e, output_bytes=writes * elements * e, shape=shape(**keys))
    raise ValueError(f"'kind' = {kind!r} must be one of {', '.join(KINDS)}")


_ROW_OPS = {"norm": tuple(o.value for o in RowOp if "norm" in o.value),
            "softmax": tuple(o.value for o in RowOp if "softmax" in o.value)}


def _row_keys(kind: str, fn: str, row: dict, elements: float) -> dict:
    """``row`` and ``row_op`` shape keys of a norm or softmax row naming its PyTorch op (``op``)
    and row width (``row``): cost/rowwise.py then prices the kernel that width dispatches to."""
    if fn and fn not in _ROW_OPS[kind]:
        raise ValueError(f"'op' = {fn!r} must be one of {', '.join(_ROW_OPS[kind])} for a {kind} row")
    width = _number(row, "row", 0.0, positive=False)
    if not width:
        return {}
    if not fn:
        raise ValueError(f"'row' = {width:g} needs 'op' to name the PyTorch op ({', '.join(_ROW_OPS[kind])})")
    if width != int(width) or width > elements:
        raise ValueError(f"'row' = {width:g} must be a whole number of elements, at most 'elements' ({elements:g})")
    return dict(row=width, row_op=float(ROW_OP_CODES[RowOp(fn)]))


def parse_row(row: dict, line: int) -> Measurement:
    kind = _get(row, "kind").lower()
    if not kind:
        raise ValueError("'kind' is empty")
    measured = _number(row, "measured_s")
    op = build_op(kind, row)
    timing = (_get(row, "timing") or "kernel").lower()
    if timing not in TIMINGS:
        raise ValueError(f"'timing' = {timing!r} must be {', '.join(TIMINGS[:-1])} or {TIMINGS[-1]}")
    per_node = 0
    if kind == "collective":
        per_node = int(_number(row, "ranks_per_node", float(op.shape["ranks"])))
    held = _number(row, "held_s", 0.0, positive=False)
    return Measurement(line, kind, measured, op, timing, per_node, _get(row, "source"), _get(row, "label"),
                       _power(row), held or None)


def _power(row: dict) -> PowerState | None:
    """The ``power`` cell (steady | burst | full); else the older ``power_limited`` (true: burst,
    false: full); None when neither is given."""
    text = _get(row, "power").lower()
    if text:
        try:
            return PowerState(text)
        except ValueError:
            raise ValueError(f"'power' = {text!r} must be one of {', '.join(POWER_STATES)}") from None
    if _get(row, "power_limited"):
        return PowerState.BURST if _bool(row, "power_limited", True) else PowerState.FULL
    return None


def read_measurements(path: str | Path) -> tuple[list[Measurement], list[BadRow]]:
    """Rows of a measurement CSV, and the rows that could not be read (with their line numbers)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a measurement CSV.")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return parse_lines(fh, str(path))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (cannot decode as UTF-8).") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc}).") from None


def parse_lines(lines, where: str = "<csv>") -> tuple[list[Measurement], list[BadRow]]:
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DataError(f"{where}: empty file; expected a header with 'kind' and 'measured_s'.")
    missing = [c for c in ("kind", "measured_s") if c not in header]
    if missing:
        raise DataError(f"{where}: the header lacks {' and '.join(repr(c) for c in missing)}; "
                        f"expected columns: {', '.join(COLUMNS)}.")
    reader.fieldnames = header
    good: list[Measurement] = []
    bad: list[BadRow] = []
    for row in reader:
        line = reader.line_num
        if all(_get(row, c) == "" for c in header):
            continue
        if None in row:  # more cells than header names
            bad.append(BadRow(line, "more cells than columns in the header"))
            continue
        try:
            good.append(parse_row(row, line))
        except ValueError as exc:
            bad.append(BadRow(line, str(exc)))
    if not good and not bad:
        raise DataError(f"{where}: no measurement rows after the header.")
    return good, bad


def frame_to_measurements(df) -> tuple[list[Measurement], list[BadRow]]:
    """Rows of a DataFrame in the CSV schema (e.g. from a converter), lines numbered as in its CSV."""
    good: list[Measurement] = []
    bad: list[BadRow] = []
    for i, row in enumerate(df.to_dict("records")):
        row = {k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else _fmt(v)) for k, v in row.items()}
        try:
            good.append(parse_row(row, i + 2))
        except ValueError as exc:
            bad.append(BadRow(i + 2, str(exc)))
    return good, bad


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
