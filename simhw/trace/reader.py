"""Read a Kineto Chrome-trace JSON (``torch.profiler`` ``export_chrome_trace``) into compact records.

The file is stream-parsed: the top-level object is walked key by key and each element of
``traceEvents`` is decoded on its own with the C JSON scanner, turned into a small tuple and
dropped, so the decoded event list is never held (peak memory is the compact records, not the
``json.load`` tree). ``.json`` and ``.json.gz`` (detected by the gzip magic bytes, not the name)
are accepted, as is a bare JSON array of events (the Chrome "JSON Array Format").

Layouts understood (ecosystem.md §2; torch_tb_profiler test data for the 2021 layout):
- torch 1.13 - 2.x: ``cpu_op``, ``user_annotation``, ``cuda_runtime``/``cuda_driver``, ``kernel``,
  ``gpu_memcpy``, ``gpu_memset``, ``[memory]`` instant events, ``deviceProperties``,
  ``distributedInfo``; ``ts``/``dur`` in µs (int in 2023 traces, float with ns precision later).
- 2021 (torch 1.8 - 1.10): ``Operator``, ``Runtime``, ``Kernel``, ``Memcpy``, ``Memset`` categories,
  lowercase ``external id``, ``[memory]`` events without a category, string thread ids.
Records (µs, as in the file):
- per CPU thread ``(pid, tid)``: ``(ts, end, code, name, payload)``; code OP/ANNOT with payload
  ``(dims, types, concrete, seq, fwd_tid, extra)`` (``None`` for ops that never do work), code
  RUNTIME with payload = correlation id;
- ``gpu``: ``(ts, dur, code, name, device, stream, correlation, bytes, blocks)`` (blocks: the launch
  grid's size, 0 when not recorded);
- ``memory``: ``(ts, bytes, total_allocated, device_type, device_id)``.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from json.scanner import make_scanner
from pathlib import Path

from ..errors import TraceError
from .ops import NO_WORK, rule_for

OP, ANNOT, RUNTIME = 0, 1, 2                    # CPU-thread record codes
KERNEL, MEMCPY, MEMSET = 10, 11, 12             # GPU record codes
_CPU_CATS = {"cpu_op": OP, "Operator": OP, "operator": OP, "user_annotation": ANNOT,
             "cuda_runtime": RUNTIME, "cuda_driver": RUNTIME, "Runtime": RUNTIME, "runtime": RUNTIME}
_GPU_CATS = {"kernel": KERNEL, "Kernel": KERNEL, "gpu_memcpy": MEMCPY, "Memcpy": MEMCPY,
             "gpu_memset": MEMSET, "Memset": MEMSET}
_COMM_ARGS = ("Collective name", "In msg nelems", "Out msg nelems", "Group size", "dtype")
_CHUNK = 1 << 20                                # characters read per refill
_SEP = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
_WS = re.compile(r"[ \t\n\r]*")


@dataclass
class Trace:
    """A parsed profiler trace: metadata plus compact per-thread, GPU and memory records."""

    path: str
    meta: dict = field(default_factory=dict)               # top-level keys other than traceEvents
    threads: dict = field(default_factory=dict)            # (pid, tid) -> [record]
    gpu: list = field(default_factory=list)
    memory: list = field(default_factory=list)
    fwd_seq: dict = field(default_factory=dict)            # sequence number -> outermost forward op name
    counts: Counter = field(default_factory=Counter)       # events by category
    events: int = 0
    shaped_ops: int = 0                                    # ops with recorded Input Dims
    work_ops: int = 0                                      # ops that could need shapes

    @property
    def device_properties(self) -> list:
        props = self.meta.get("deviceProperties")
        return props if isinstance(props, list) else []

    @property
    def is_cuda(self) -> bool:
        return bool(self.gpu) or bool(self.device_properties)

    @property
    def has_shapes(self) -> bool:
        return self.shaped_ops > 0

    @property
    def world_size(self) -> int:
        info = self.meta.get("distributedInfo")
        size = info.get("world_size") if isinstance(info, dict) else None
        return int(size) if isinstance(size, (int, float)) and size >= 1 else 1

    def device_name(self) -> str:
        """The GPU the kernels ran on (deviceProperties of the busiest device), else "CPU"."""
        props = self.device_properties
        if props:
            used = Counter(r[4] for r in self.gpu)
            dev = used.most_common(1)[0][0] if used else 0
            for p in props:
                if isinstance(p, dict) and p.get("id") == dev:
                    return str(p.get("name", f"GPU {dev}"))
            return str(props[0].get("name", "GPU")) if isinstance(props[0], dict) else "GPU"
        return "GPU (no deviceProperties)" if self.gpu else "CPU"


def is_trace_path(path) -> bool:
    """True for ``*.json`` / ``*.json.gz`` paths (what ``simhw estimate``/``validate`` treat as a trace)."""
    name = str(path).lower()
    return name.endswith((".json", ".json.gz", ".pt.trace.json", ".json.gzip"))


def load_trace(path) -> Trace:
    """Parse the trace at ``path`` (see module doc). Raises :class:`TraceError` on unreadable input."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such trace file.")
    trace = Trace(path=str(p))
    col = _Collector(trace)
    with _open_text(p) as fh:
        _Parser(fh, str(p)).parse(trace.meta, col.add)
    if not trace.events:
        raise TraceError(f"{p}: the trace has no events (traceEvents is empty).")
    if not trace.threads and not trace.gpu:
        raise TraceError(f"{p}: no profiler op or kernel events (cpu_op, kernel, ...) in {trace.events} "
                         "events; is this a PyTorch profiler trace?")
    return trace


def trace_from_dict(doc: dict, path: str = "<dict>") -> Trace:
    """Build a :class:`Trace` from an already-loaded document; empties ``traceEvents`` as it goes."""
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise TraceError(f"{path}: not a PyTorch profiler trace (no 'traceEvents' list).")
    trace = Trace(path=path, meta={k: v for k, v in doc.items() if k != "traceEvents"})
    col = _Collector(trace)
    events = doc["traceEvents"]
    for i, ev in enumerate(events):
        col.add(ev)
        events[i] = None                   # in place: never two copies of the list
    events.clear()
    return trace


def _open_text(p: Path):
    with open(p, "rb") as fh:
        magic = fh.read(2)
    try:
        raw = gzip.open(p, "rb") if magic == b"\x1f\x8b" else open(p, "rb")
    except OSError as exc:
        raise TraceError(f"{p}: cannot open ({exc}).") from None
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


class _Parser:
    """Walks one JSON document from a text stream, decoding one value at a time (C scanner)."""

    def __init__(self, fh, where: str):
        self.fh, self.where = fh, where
        self.buf, self.pos, self.eof, self.offset = "", 0, False, 0
        self.scan = make_scanner(json.JSONDecoder())

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.fh.read(_CHUNK)
        except EOFError:
            raise TraceError(f"{self.where}: the gzip stream ends early (truncated file?).") from None
        except (OSError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
            raise TraceError(f"{self.where}: not a readable gzip/JSON file ({_short(exc)}).") from None
        except UnicodeDecodeError:
            raise TraceError(f"{self.where}: not UTF-8 text (is it a binary or corrupt file?).") from None
        if not chunk:
            self.eof = True
            return False
        self.offset += self.pos
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def _char(self) -> str:
        """Next non-space character (not consumed); "" at end of input."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, chars: str, what: str) -> str:
        c = self._char()
        if c == "" or c not in chars:
            self._fail(what, found=c)
        self.pos += 1
        return c

    def _fail(self, what: str, found: str = "", exc: Exception | None = None):
        at = self.offset + self.pos
        if found == "" and self.eof:
            raise TraceError(f"{self.where}: the JSON ends early at character {at:,} (truncated file?); "
                             f"expected {what}.")
        detail = f" ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise TraceError(f"{self.where}: malformed JSON at character {at:,}: expected {what}{detail}.")

    def _near_end(self, pos: int) -> bool:
        """Only whitespace and a few characters (a cut literal or escape) follow ``pos``."""
        return len(self.buf) - _WS.match(self.buf, pos).end() < 16

    def value(self, what: str = "a JSON value"):
        while True:
            self._char()
            try:
                value, end = self.scan(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                err = exc
                cut = exc.msg.startswith("Unterminated string") or self._near_end(exc.pos)
            except StopIteration as stop:      # the C scanner's "no value here", also from inside a value
                at = stop.value if isinstance(stop.value, int) else self.pos
                err, cut = None, self._near_end(at)
            else:
                if end >= len(self.buf) and not isinstance(value, (dict, list, str)) and self._fill():
                    continue                   # a number cut by the chunk boundary: decode again
                self.pos = end
                return value
            if cut:                            # the value may run past the buffer: read on and retry
                if self._fill():
                    continue
                self._fail(what, exc=err)      # at the end of the input: truncated
            self._fail(what, found="?", exc=err)

    def parse(self, meta: dict, sink) -> None:
        if self.buf == "" and not self._fill():
            raise TraceError(f"{self.where}: the file is empty.")
        if self.buf.startswith("\ufeff"):
            self.pos = 1
        first = self._char()
        if first == "[":                         # Chrome "JSON Array Format": just the events
            meta["traceEvents_format"] = "array"
            self._array(sink)
            return
        if first != "{":
            raise TraceError(f"{self.where}: not JSON (starts with {first[:1]!r}); expected a PyTorch "
                             "profiler trace (.json or .json.gz).")
        self.pos += 1
        found = False
        if self._char() == "}":
            self.pos += 1
        else:
            while True:
                key = self.value("a key string")
                if not isinstance(key, str):
                    self._fail("a key string")
                self._expect(":", "':'")
                if key == "traceEvents" and self._char() == "[":
                    found = True
                    self._array(sink)
                else:
                    meta[key] = self.value(f"the value of {key!r}")
                if self._expect(",}", "',' or '}'") == "}":
                    break
        if not found:
            keys = ", ".join(sorted(meta)[:6]) or "none"
            raise TraceError(f"{self.where}: JSON but not a PyTorch profiler trace (no 'traceEvents' list; "
                             f"top-level keys: {keys}).")

    def _array(self, sink) -> None:
        self._expect("[", "'['")
        if self._char() == "]":
            self.pos += 1
            return
        scan, sep = self.scan, _SEP.match
        while True:
            buf, pos = self.buf, self.pos
            try:
                ev, end = scan(buf, pos)
                if end >= len(buf):
                    raise StopIteration(end)
            except (StopIteration, json.JSONDecodeError):
                ev = self.value("an event object")
                end = self.pos
                buf = self.buf
            sink(ev)
            m = sep(buf, end)
            if m is not None and m.end() < len(buf):
                self.pos = m.end()
                continue
            self.pos = end
            if self._expect(",]", "',' or ']' after an event") == "]":
                return


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:120]


def _freeze(x):
    """Nested lists -> nested tuples (hashable, shareable)."""
    if type(x) is list:
        return tuple(_freeze(y) for y in x)
    return x


class _Collector:
    """Turns decoded event dicts into the compact records of :class:`Trace` (the hot path)."""

    def __init__(self, trace: Trace):
        self.t = trace
        self.names: dict = {}
        self.cache: dict = {}              # shared tuples for repeated dims / types / concrete inputs
        self.rules: dict = {}
        self.fwd_ts: dict = {}

    def _shared(self, value):
        if not value:
            return ()
        try:
            key = tuple(map(tuple, value)) if type(value[0]) is list else tuple(value)
            hash(key)
        except TypeError:
            key = _freeze(value)
        return self.cache.setdefault(key, key)

    def add(self, e) -> None:
        t = self.t
        t.events += 1
        if type(e) is not dict:
            t.counts["(not an object)"] += 1
            return
        ph = e.get("ph")
        cat = e.get("cat")
        t.counts[cat if cat is not None else f"ph={ph}"] += 1
        if ph == "X":
            code = _CPU_CATS.get(cat)
            if code is None:
                gcode = _GPU_CATS.get(cat)
                if gcode is not None:
                    self._gpu(e, gcode)
                return
            ts = e.get("ts")
            if ts is None:
                return
            end = ts + (e.get("dur") or 0)
            name = e.get("name", "")
            name = self.names.setdefault(name, name)
            key = (e.get("pid"), e.get("tid"))
            lst = t.threads.get(key)
            if lst is None:
                lst = t.threads[key] = []
            a = e.get("args") or {}
            if code == RUNTIME:
                lst.append((ts, end, RUNTIME, name, a.get("correlation")))
                return
            rule = self.rules.get(name)
            if rule is None:
                rule = self.rules[name] = rule_for(name)
            seq = a.get("Sequence number")
            fwd = a.get("Fwd thread id")
            if seq is not None and not fwd and code == OP:
                old = self.fwd_ts.get(seq)
                if old is None or ts < old:
                    self.fwd_ts[seq] = ts
                    t.fwd_seq[seq] = name
            if rule is NO_WORK and seq is None:
                lst.append((ts, end, code, name, None))
                return
            dims = a.get("Input Dims")
            if dims is None:
                dims = a.get("Input dims")
            extra = None
            if "Collective name" in a:
                extra = {k: a[k] for k in _COMM_ARGS if k in a}
            elif a.get("kernel_backend") == "triton":           # an Inductor launch: strides show broadcasts
                extra = {"Input Strides": a.get("Input Strides")}
            if dims:
                t.shaped_ops += 1
            if rule is not None and rule is not NO_WORK:
                t.work_ops += 1
            lst.append((ts, end, code, name, (self._shared(dims), self._shared(a.get("Input type")),
                                              self._shared(a.get("Concrete Inputs")), seq, fwd, extra)))
        elif ph in ("i", "I") and e.get("name") == "[memory]":
            a = e.get("args") or {}
            t.memory.append((e.get("ts", 0), a.get("Bytes", 0), a.get("Total Allocated"),
                             a.get("Device Type", 0), a.get("Device Id", -1)))

    def _gpu(self, e: dict, code: int) -> None:
        a = e.get("args") or {}
        name = e.get("name", "")
        name = self.names.setdefault(name, name)
        corr = a.get("correlation")
        grid = a.get("grid") or ()
        blocks = 1
        for g in grid:
            blocks *= int(g) if isinstance(g, (int, float)) and g > 0 else 1
        self.t.gpu.append((e.get("ts", 0), e.get("dur") or 0, code, name, a.get("device", e.get("pid")),
                           a.get("stream", e.get("tid")), corr, a.get("bytes", 0), blocks if grid else 0))
