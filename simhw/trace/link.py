"""Link a parsed trace into costed ops: call trees, kernels, phases, and what could not be mapped.

- **Call tree.** Per CPU thread, ops nest by time containment (sorted by start, longer first).
- **Kernels.** A kernel/memcpy/memset links to its ``cuda_runtime`` launch by ``correlation``;
  the launch belongs to the innermost op on its thread whose span contains it (External ids are
  not used: in 2023 traces they equal the correlation and match no op, ecosystem.md §2.3).
- **Which ops are costed.** Walking down the tree, the first op with a TERMINAL rule is costed
  and owns every kernel below it; COMPOSITE ops (``aten::layer_norm``, ``aten::to``) are costed only
  when nothing below them is; views and allocations do no work. Autograd nodes and annotations are
  containers.
- **Phases.** Ops under an ``autograd::engine::evaluate_function`` wrapper or a backward node
  (``Fwd thread id`` > 0), or on a thread that only runs those, are backward; ops under
  ``Optimizer.step#``/``Optimizer.zero_grad#`` annotations, and foreach/fused optimizer ops, are
  optimizer; the rest forward. A backward node's ``Sequence number`` names the outermost forward
  op with the same number (the op whose gradient it computes).
- **Unmapped.** An op with no rule and nothing costed below it, a costed op whose shapes were not
  recorded, work launched directly by a container, and kernels with no launching op are listed by
  name with count and measured time: nothing is dropped silently.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..spec.model import DType
from ..workload.graph import OpKind, Phase
from .ops import COMPOSITE, NO_WORK, SELF_FIRST, TERMINAL, Args, Est
from .reader import ANNOT, MEMCPY, MEMSET, OP, RUNTIME, Trace
from .memops import multi_tensor_apply
from .rules import lookup

_COMPUTE = (OpKind.GEMM, OpKind.ATTENTION, OpKind.CONV)
_LIST_OPS = ("aten::_foreach_", "aten::_fused_")   # ops on TensorLists (trace/rules.py: foreach)
_EPS_US = 1e-3                      # 1 ns: float rounding of µs timestamps with ns precision
_WRAPPER_PREFIXES = ("autograd::", "torch::autograd::", "ProfilerStep#", "Optimizer.", "<", "##", "[",
                     "torch::jit::", "DistributedDataParallel", "c10d::", "nccl:", "gloo:")


@dataclass
class TraceOp:
    """One costed op occurrence: what it does (``est``) and what the trace measured (seconds)."""

    name: str
    phase: Phase
    est: Est
    cpu_s: float
    gpu_s: float
    kernels: int
    ts_us: float
    context: str = ""               # enclosing backward node, "AddmmBackward0 of aten::linear"
    tf32: bool = False              # its kernels are TF32 tensor-core GEMMs (cutlass s1688, *tf32*)


@dataclass
class Unmapped:
    count: int = 0
    cpu_s: float = 0.0
    gpu_s: float = 0.0
    reason: str = ""


@dataclass
class Analysis:
    ops: list = field(default_factory=list)                       # TraceOp, in start order
    unmapped: dict = field(default_factory=lambda: defaultdict(Unmapped))
    total_cpu_s: float = 0.0                                      # top-level CPU ops
    total_gpu_s: float = 0.0                                      # all kernels, memcpy, memset
    steps: int = 1
    bwd_nodes: int = 0
    bwd_matched: int = 0
    warnings: list = field(default_factory=list)

    @property
    def measured_total_s(self) -> float:
        return self.total_gpu_s if self.total_gpu_s > 0 else self.total_cpu_s

    def unmapped_rows(self) -> list[tuple[str, int, float, str]]:
        """(name, count, share of measured time, reason), largest share first."""
        total = self.measured_total_s or 1.0
        use_gpu = self.total_gpu_s > 0
        rows = [(n, u.count, (u.gpu_s if use_gpu else u.cpu_s) / total, u.reason) for n, u in self.unmapped.items()]
        return sorted(rows, key=lambda r: (-r[2], -r[1], r[0]))


class _Frame:
    __slots__ = ("ts", "end", "name", "code", "payload", "owner", "rule", "est", "gpu_s", "kernels",
                 "copy_bytes", "copies", "host_copy", "tf32", "accounted", "bwd", "opt", "ctx", "in_op",
                 "launches")

    def __init__(self, rec, parent):
        self.ts, self.end, self.code, self.name, self.payload = rec[0], rec[1], rec[2], rec[3], rec[4]
        self.owner = parent.owner if parent is not None else None
        self.rule = self.est = None
        self.gpu_s = 0.0
        self.kernels = 0
        self.copy_bytes = 0.0
        self.copies = 0
        self.tf32 = False
        self.launches: list = []        # (kernel name, grid blocks) of its kernels
        self.host_copy = False
        self.accounted = False
        self.in_op = parent is not None and (parent.in_op or parent.code == OP)


def analyze(trace: Trace) -> Analysis:
    """Walk every CPU thread's call tree and attribute GPU work (see module doc)."""
    out = Analysis()
    by_corr: dict = {}
    for i, g in enumerate(trace.gpu):
        out.total_gpu_s += g[1] * 1e-6
        if g[6] is not None:
            by_corr.setdefault(g[6], []).append(i)
    walker = _Walker(trace, out, by_corr)
    steps = set()
    for key, recs in trace.threads.items():
        recs.sort(key=lambda r: (r[0], -r[1]))
        steps.update(r[3] for r in recs if r[2] != RUNTIME and r[3].startswith("ProfilerStep#"))
        walker.thread(recs)
    out.steps = max(1, len(steps))
    walker.leftover_gpu()
    out.ops.sort(key=lambda o: o.ts_us)
    return out


class _Walker:
    def __init__(self, trace: Trace, out: Analysis, by_corr: dict):
        self.t, self.out, self.by_corr = trace, out, by_corr
        self.rules: dict = {}
        self.memo: dict = {}                 # (rule, id(dims), id(types), id(concrete)) -> Est
        self.world = trace.world_size
        self.bwd_seqs: set = set()

    def _rule(self, name):
        r = self.rules.get(name, 0)
        if r == 0:
            r = self.rules[name] = lookup(name)
        return r

    def thread(self, recs: list) -> None:
        eval_ops = sum(1 for r in recs if r[2] == OP and r[3].startswith("autograd::engine::evaluate_function"))
        fwd_ops = sum(1 for r in recs if r[2] == OP and r[4] is not None and r[4][3] is not None and not r[4][4])
        bwd_thread = eval_ops > 0 and fwd_ops == 0
        stack: list = []
        for rec in recs:
            ts = rec[0]
            while stack and stack[-1].end <= ts + _EPS_US:
                self._pop(stack)
            parent = stack[-1] if stack else None
            if rec[2] == RUNTIME:
                if parent is not None:
                    self._launch(parent.owner or parent, rec[4])
                continue
            f = _Frame(rec, parent)
            f.bwd = parent.bwd if parent is not None else bwd_thread
            f.opt = parent.opt if parent is not None else False
            f.ctx = parent.ctx if parent is not None else ""
            self._enter(f)
            stack.append(f)
        while stack:
            self._pop(stack)

    def _enter(self, f: _Frame) -> None:
        name, p = f.name, f.payload
        if name.startswith(("Optimizer.step#", "Optimizer.zero_grad#")):
            f.opt = True
        wrapper = name.startswith("autograd::engine::evaluate_function")
        if wrapper or (p is not None and p[4] and p[3] is not None):   # backward node: Fwd thread id > 0
            f.bwd = True
            seq = p[3] if p is not None else None
            fwd = self.t.fwd_seq.get(seq) if seq is not None else None
            if seq is not None and seq not in self.bwd_seqs:
                self.bwd_seqs.add(seq)
                self.out.bwd_nodes += 1
                self.out.bwd_matched += fwd is not None
            node = name.split(": ", 1)[1] if wrapper and ": " in name else name
            f.ctx = f"{node} of {fwd}" if fwd else node
        if f.owner is not None:
            o = f.owner
            if name == "aten::copy_" and p is not None and o.est is not None and o.est.kind in _COMPUTE:
                # autocast's casts of a GEMM's or attention's operands (and other copies inside such
                # an op) are kernels of their own that the op's rule does not price: cost them apart
                rule = self._rule(name)
                est = self._cost(rule, p) if rule is not None and rule.fn is not None else None
                if est is not None:
                    f.rule, f.est, f.owner = rule, est, f
                    return
            if name == o.name and p is not None and o.rule is not None and o.rule.fn is not None:
                est = self._cost(o.rule, p)          # autocast re-dispatch: the inner call has the real dtype
                o.est = est if est is not None else o.est
            return
        rule = self._rule(name)
        f.rule = rule
        if rule is None or rule is NO_WORK:
            return
        if rule.mode == TERMINAL:
            f.owner = f
            f.est = self._cost(rule, p) if rule.fn is not None and p is not None else None
        elif rule.mode == SELF_FIRST and p is not None:
            f.est = self._cost(rule, p)
            if f.est is not None:
                f.owner = f

    def _cost(self, rule, p) -> Est | None:
        """rule.fn on a record's arguments; memoised (the reader shares identical argument tuples)."""
        if p[5] is not None:
            return rule.fn(self._args(p))
        key = (rule, id(p[0]), id(p[1]), id(p[2]))
        est = self.memo.get(key, self)
        if est is self:
            est = self.memo[key] = rule.fn(self._args(p))
        return est

    def _args(self, p) -> Args:
        return Args(p[0], p[1], p[2], p[5], self.world)

    def _launch(self, target: _Frame, corr) -> None:
        idx = self.by_corr.pop(corr, None) if corr is not None else None
        if not idx:
            return
        for i in idx:
            g = self.t.gpu[i]
            target.gpu_s += g[1] * 1e-6
            target.kernels += 1
            target.launches.append((g[3], g[8] if len(g) > 8 else 0))
            if g[2] in (MEMCPY, MEMSET):
                target.copy_bytes += g[7] or 0
                target.copies += 1
                target.host_copy |= g[2] == MEMCPY and ("HtoD" in g[3] or "DtoH" in g[3])
            elif "1688gemm" in g[3] or "tf32" in g[3]:
                target.tf32 = True

    def _pop(self, stack: list) -> None:
        f = stack.pop()
        parent = stack[-1] if stack else None
        if f.code == OP and not f.in_op:
            self.out.total_cpu_s += (f.end - f.ts) * 1e-6
        if f.owner is not None and f.owner is not f:
            return
        done = self._resolve(f)
        if done and parent is not None:
            parent.accounted = True

    def _resolve(self, f: _Frame) -> bool:
        """Emit or record ``f`` when it is costed or unmapped; True if it accounts for its subtree."""
        cpu_s = (f.end - f.ts) * 1e-6
        if f.owner is f:
            if f.est is None:
                return self._no_shapes(f, cpu_s)
            self._emit(f, f.est, cpu_s)
            return True
        rule = f.rule
        if rule is not None and rule is not NO_WORK and rule.mode in (COMPOSITE, SELF_FIRST) and not f.accounted:
            est = self._cost(rule, f.payload) if rule.fn is not None and f.payload is not None else None
            if est is not None and not (est.flops == 0 and est.input_bytes == est.output_bytes == 0):
                self._emit(f, est, cpu_s)
                return True
            if rule.fn is not None and f.gpu_s > 0:
                return self._no_shapes(f, cpu_s)
        if not f.accounted and f.kernels and f.copies == f.kernels and f.copy_bytes > 0:
            self._emit(f, _copy_est(f.copy_bytes, f.host_copy), cpu_s)     # only memcpy/memset below
            return True
        if f.accounted:
            if f.gpu_s > 0:                     # work launched by the container itself
                self._unmapped(f.name, 0.0, f, "launches GPU work itself (children costed)")
            return True
        if rule is None and not self._wrapper(f):
            self._unmapped(f.name, cpu_s, f, "no cost rule")
            return True
        if f.gpu_s > 0:
            self._unmapped(f.name, cpu_s, f, "GPU work under a no-work op")
            return True
        return False

    def _wrapper(self, f: _Frame) -> bool:
        if f.code == ANNOT:
            return True
        n = f.name
        return n.startswith(_WRAPPER_PREFIXES) or "Backward" in n or n in ("forward", "backward", "detach",
                                                                           "detach_", "record_param_comms")

    def _no_shapes(self, f: _Frame, cpu_s: float) -> bool:
        if f.copy_bytes > 0 and f.copies == f.kernels:   # memcpy/memset: the events' byte counts suffice
            self._emit(f, _copy_est(f.copy_bytes, f.host_copy), cpu_s)
            return True
        if f.launches and f.rule is not None and f.rule.fn is not None and f.name.startswith(_LIST_OPS):
            est = multi_tensor_apply(f.launches)        # TensorList shapes are never recorded
            if est is not None:
                self._emit(f, est, cpu_s)
                return True
        dims = f.payload[0] if f.payload else ()
        why = "arguments not understood" if any(dims) else "shapes not recorded"
        self._unmapped(f.name, cpu_s, f, why)
        return True

    def _phase(self, f: _Frame, est: Est) -> Phase:
        if f.opt or est.kind is OpKind.OPTIMIZER:
            return Phase.OPTIMIZER
        return Phase.BWD if f.bwd else Phase.FWD

    def _emit(self, f: _Frame, est: Est, cpu_s: float) -> None:
        self.out.ops.append(TraceOp(f.name, self._phase(f, est), est, cpu_s, f.gpu_s, f.kernels, f.ts,
                                    f.ctx if f.bwd else "", f.tf32))

    def _unmapped(self, name: str, cpu_s: float, f: _Frame | None, reason: str, gpu_s: float | None = None):
        u = self.out.unmapped[name]
        u.count += 1
        u.cpu_s += cpu_s
        u.gpu_s += f.gpu_s if gpu_s is None else gpu_s
        u.reason = u.reason or reason

    def leftover_gpu(self) -> None:
        """GPU events whose launch is not in the trace (filtered traces, other threads)."""
        for idx in self.by_corr.values():
            for i in idx:
                g = self.t.gpu[i]
                if g[2] in (MEMCPY, MEMSET) and g[7]:
                    est = _copy_est(g[7], g[2] == MEMCPY and ("HtoD" in g[3] or "DtoH" in g[3]))
                    self.out.ops.append(TraceOp(g[3], Phase.FWD, est, 0.0, g[1] * 1e-6, 1, g[0]))
                else:
                    self._unmapped(f"(no launching op) {_short_kernel(g[3])}", 0.0, None,
                                   "launch not in the trace", gpu_s=g[1] * 1e-6)


def _copy_est(nbytes: float, host: bool) -> Est:
    shape = {"elements": nbytes, "host_copy": 1.0 if host else 0.0}
    return Est(OpKind.COPY, 0.0, DType.FP32, input_bytes=nbytes, output_bytes=nbytes, shape=shape)


def _short_kernel(name: str) -> str:
    n = name[5:] if name.startswith("void ") else name
    cut = min((i for i in (n.find("("), n.find("<")) if i > 0), default=len(n))
    return n[:cut][:80]

