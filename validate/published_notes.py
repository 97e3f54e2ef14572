"""The figures of validate/REPORT.md's notes on the published tables, computed from the committed
files (validate/data/published/, its README names each source) and the specs, so the notes state
no figure by hand that a change to the model or a spec would leave stale.

    note_figures() -> dict     # keyword arguments of validate/report.py's XLA_NOTE (OpenXLA's tables)
    vidur_h100_note() -> str   # what vidur's H100 sample shows (vidur-h100-sample.csv)
    vidur_h100_nccl_note() -> str   # what vidur's H100 NCCL sample shows (vidur-h100-nccl-sample.csv)

Errors are fractions, predicted / measured - 1 (+ = simhw slower), as everywhere in the report.
"""
from __future__ import annotations

import dataclasses
import functools
import statistics
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parent / "data" / "published"
LARGE_DOT_S = 50e-6           # "large" dots: measured at 50 us or more (the bands table's upper bands)
LARGE_MESSAGE_B = 2 ** 24     # collectives from 16 MiB: past the launch and skew that dominate small ones
PERMUTE_MESSAGE_B = 2 ** 30   # collective-permutes of 1-2 GiB: the link's sustained rate


@functools.lru_cache(maxsize=None)
def _rows(name: str) -> tuple:
    """A committed file's measurement rows, read once per report run."""
    from simhw.validation import read_measurements

    rows, _ = read_measurements(PUBLISHED / name)
    return tuple(rows)


def _nvlink(spec):
    """The NVLink of a node spec's device."""
    return next(lk for lk in spec.device.links if lk.kind.value == "nvlink")


def dot_bias(name: str, spec: str, min_s: float = LARGE_DOT_S) -> tuple[float, float]:
    """(median signed error as the rows are priced (power=full), the same priced as a burst at the
    power limit) of a dot file's rows measured at ``min_s`` or more on ``spec``."""
    from simhw.cost.power import PowerState
    from simhw.spec.load import load_hw
    from simhw.validation.predict import predict_s

    hw = load_hw(spec)
    rows = [m for m in _rows(name) if m.measured_s >= min_s]
    out = []
    for power in (None, PowerState.BURST):
        priced = [dataclasses.replace(m, power=power) if power else m for m in rows]
        out.append(statistics.median(predict_s(m, hw) / m.measured_s - 1 for m in priced))
    return out[0], out[1]


def collective_errors(node: str, min_bytes: float = LARGE_MESSAGE_B) -> dict[str, tuple[float, float]]:
    """{group: (median |error|, median signed error)} of an OpenXLA collective file's rows of at
    least ``min_bytes`` on the ``node`` spec. Groups: "others" (all-gathers, reduce-scatters and
    all-to-alls over 4-8 GPUs), "others at 2" (the same at 2 GPUs) and "all-reduce" (2-8 GPUs)."""
    from simhw.spec.load import load_hw
    from simhw.validation.predict import predict_s

    hw = load_hw(node)
    groups: dict[str, list[float]] = {}
    for m in _rows(f"xla-collective-{node}.csv"):
        op = m.label.split()[0]
        if m.op.shape["bytes"] < min_bytes or op == "collective-permute":
            continue
        key = "all-reduce" if op == "all-reduce" else ("others at 2" if m.op.shape["ranks"] == 2 else "others")
        groups.setdefault(key, []).append(predict_s(m, hw) / m.measured_s - 1)
    return {k: (statistics.median(abs(e) for e in v), statistics.median(v)) for k, v in groups.items()}


def permute_link_fraction(node: str, min_bytes: float = PERMUTE_MESSAGE_B) -> tuple[float, float]:
    """(lowest, highest) share of one NVLink direction that an OpenXLA collective-permute (4-8 pairs
    at once) of at least ``min_bytes`` moves: its bytes / measured time / the spec's NVLink rate."""
    from simhw.spec.load import load_hw

    link = _nvlink(load_hw(node))
    shares = [m.op.shape["bytes"] / m.measured_s / link.bandwidth_bytes_per_s for m in _rows(f"xla-collective-{node}.csv")
              if m.label.startswith("collective-permute") and m.op.shape["bytes"] >= min_bytes]
    return min(shares), max(shares)


def note_figures() -> dict:
    """Keyword arguments of validate/report.py's XLA_NOTE (besides the H100 offset fit and the mesh
    ratios, which validate/own_runs.py computes)."""
    from simhw.spec.load import load_hw
    from own_runs import bus_bandwidth

    b200_full, b200_burst = dot_bias("xla-gemm-b200-bf16.csv", "b200")
    h100, b200 = collective_errors("dgx-h100"), collective_errors("dgx-b200")
    permutes = [permute_link_fraction(n) for n in ("dgx-h100", "dgx-b200")]
    lo, hi = min(p[0] for p in permutes), max(p[1] for p in permutes)
    racks = tuple(range(4, 73))
    ar_ag = {n: bus_bandwidth(n, "all-reduce", (8,)) / bus_bandwidth(n, "all-gather", (8,)) for n in ("dgx-h100", "dgx-b200")}
    two = [bus_bandwidth(n, op, (2,)) / bus_bandwidth(n, op, (8,)) for n in ("dgx-h100", "dgx-b200")
           for op in ("all-gather", "reduce-scatter", "all-to-all")]
    return dict(
        two_lo=min(two), two_hi=max(two),
        b200_full=b200_full, b200_burst=b200_burst,
        b200_compute_fraction=load_hw("b200").efficiency.compute_fraction,
        others_h100=h100["others"][0], others_b200=b200["others"][0],
        others2_h100=h100["others at 2"][1], others2_b200=b200["others at 2"][1],
        allreduce_h100=h100["all-reduce"][1], allreduce_b200=b200["all-reduce"][1],
        ar_ag_h100=ar_ag["dgx-h100"], ar_ag_b200=ar_ag["dgx-b200"],
        nvls_gain=bus_bandwidth("gb200-nvl72", "all-reduce", racks) / bus_bandwidth("gb200-nvl72", "all-gather", racks),
        permute_lo=lo, permute_hi=hi,
        p2p_fraction=load_hw("a100").efficiency.collective_p2p_fraction)


def _errors(rows, hw, select) -> list[float]:
    from simhw.validation.predict import predict_s

    return [predict_s(m, hw) / m.measured_s - 1 for m in rows if select(m)]


def _op(m) -> str:
    return m.label.split()[2]          # "Llama-2-7b-hf tp1 attn_rope tokens=4096" (simhw.validation.sources)


def vidur_h100_note(name: str = "vidur-h100-sample.csv") -> str:
    """A paragraph on vidur's H100 sample: its GEMMs priced with and without the stream-K scheduler
    (the h100 spec's gemm_stream_k, which modern cuBLAS runs), and the median error of its
    latency-bound row kernels (cost/latency.py)."""
    from simhw.calibrate import with_efficiency
    from simhw.spec.load import load_hw
    from simhw.validation import evaluate

    rows = _rows(name)
    hw = load_hw("h100")

    def stats(spec):
        st = evaluate([m for m in rows if m.kind == "gemm"], spec, name).kinds["gemm"]
        return st.median_ape, st.p90_ape, st.bias

    def share(m_, n_, k_):   # a GEMM's measured fraction of the fp16 peak
        m = next(r for r in rows if r.kind == "gemm" and (r.op.shape["m"], r.op.shape["n"], r.op.shape["k"]) == (m_, n_, k_))
        return m.op.flops / m.measured_s / hw.peak(m.op.dtype)

    eff = hw.efficiency
    waves = lambda m_, n_: -(-m_ // eff.gemm_tile_m) * -(-n_ // eff.gemm_tile_n) / hw.compute_units   # noqa: E731
    tile = f"{eff.gemm_tile_m} x {eff.gemm_tile_n}"

    on, off = stats(hw), stats(with_efficiency(hw, gemm_stream_k=False))
    rope, norm, act = (statistics.median(_errors(rows, hw, lambda m, o=o: _op(m) == o))
                       for o in ("attn_rope", "input_layernorm", "mlp_act"))
    return (
        f"vidur's H100 sample (vidur-h100-sample.csv, 2024 software, nothing fitted): its GEMMs come out {on[0]:.1%} "
        f"median, {on[1]:.1%} p90, bias {on[2]:+.1%} with the h100 spec's stream-K scheduler (gemm_stream_k, which "
        f"the cuBLAS of simhw's own 2026 H100 runs uses), and {off[0]:.1%} / {off[1]:.1%}, bias {off[2]:+.1%} without "
        "it: that year's cuBLAS shows the wave quantisation stream-K removes (640 x 8192 x 4096, "
        f"{waves(640, 8192):.1f} waves of {tile} tiles, runs at {share(640, 8192, 4096):.2f} of peak, "
        f"1024 x 8192 x 4096, {waves(1024, 8192):.1f} waves, at "
        f"{share(1024, 8192, 4096):.2f}). The spec keeps stream-K, which its own runs measured; a user pricing older "
        f"software sets it false. sarathi-serve's row kernels, one scalar load in flight per thread, come out "
        f"{rope:+.1%} (RoPE), {norm:+.1%} (RMSNorm) and {act:+.1%} (SiLU-and-mul) at the median: how many loads a "
        "thread keeps in flight differs per kernel, which cost/latency.py does not model.")


def vidur_h100_nccl_note(name: str = "vidur-h100-nccl-sample.csv") -> str:
    """A paragraph on vidur's H100 NCCL sample: its errors on the dgx-h100 spec with and without the
    NVLink SHARP all-reduce (collective_nvls_fraction), and the measured bus bandwidth of its largest
    all-reduces (64 MiB) against both pricings."""
    from simhw.calibrate import with_efficiency
    from simhw.spec.load import load_hw
    from simhw.validation import evaluate
    from simhw.validation.predict import predict_s

    rows = _rows(name)
    node = load_hw("dgx-h100")
    ring = with_efficiency(node, collective_nvls_fraction=0.0)
    on, off = (evaluate(rows, spec, name).kinds["collective"] for spec in (node, ring))
    top = max(m.op.shape["bytes"] for m in rows)
    ring_limit = _nvlink(node).bandwidth_bytes_per_s * node.device.efficiency.collective_bus_fraction / 1e9

    def bus(g, spec=None):   # median bus bandwidth, GB/s, of the g-GPU all-reduces of the largest size
        sel = [m for m in rows if m.label.split()[1] == "all_reduce" and m.op.shape["ranks"] == g
               and m.op.shape["bytes"] == top]
        return statistics.median(2 * (g - 1) / g * m.op.shape["bytes"] / (predict_s(m, spec) if spec else m.measured_s)
                                 for m in sel) / 1e9

    return (
        f"vidur's H100 NCCL sample (vidur-h100-nccl-sample.csv: all-reduces over 2, 4 and 8 GPUs of a DGX H100 and "
        f"send/recv inside and across nodes, torch.distributed, up to {top / 2 ** 20:.0f} MiB; nothing fitted) comes out "
        f"{on.median_ape:.1%} median, {on.p90_ape:.1%} p90 on dgx-h100, and {off.median_ape:.1%} / {off.p90_ape:.1%} "
        "without the NVLink SHARP all-reduce (collective_nvls_fraction 0): at "
        f"{top / 2 ** 20:.0f} MiB its 8-GPU all-reduces move {bus(8):.0f} GB/s of bus bandwidth and its 4-GPU ones "
        f"{bus(4):.0f}, where the ring alone is priced at {bus(8, ring):.0f} and {bus(4, ring):.0f} and NVLink SHARP at "
        f"{bus(8, node):.0f} and {bus(4, node):.0f}. The ring's own limit at the spec's bus fraction is {ring_limit:.0f} "
        "GB/s, so these mid-size rows cannot tell a ring that fills its pipeline sooner than collective_ramp says from a "
        "partial switch reduction; XLA's H100 all-reduces of 1 GiB and more (the note above) reach less than NVLink "
        "SHARP's rate.")
