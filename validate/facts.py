"""Figures about the A100 measurement sets themselves, computed from their rows for REPORT.md's notes
(what the kernels reached, not what simhw predicts), so that no figure in the notes is typed by hand.

    a100_notes(rows_by_source, device) -> markdown

``rows_by_source`` maps a source name (validate/datasets.yaml) to its readable rows
(simhw.validation.schema.Measurement); a figure whose rows are absent is left out.
"""
from __future__ import annotations

import statistics

from simhw.cost.roofline import fresh_l2_bytes

LARGE_GEMM_FLOP = 2e11          # "large" GEMMs: >= 0.2 TFLOP (>= ~0.7 ms on an A100)


def _q(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def gemm_peak_fractions(rows, device) -> list[float]:
    """Achieved FLOP/s over the dense tensor peak of each large GEMM row."""
    return [m.op.flops / m.measured_s / device.peak(m.op.dtype)
            for m in rows if m.kind == "gemm" and m.op.flops >= LARGE_GEMM_FLOP]


def _collectives(rows, name: str, inside: bool):
    for m in rows:
        s = m.op.shape
        if m.kind != "collective" or m.op.name != name:
            continue
        per_node = m.ranks_per_node or int(s["ranks"])
        if (per_node >= s["ranks"]) == inside:
            yield m, int(s["ranks"]), per_node


def bus_bandwidth(m, ranks: int) -> float:
    """nccl-tests' bus bandwidth of an all_reduce row: 2 (n - 1) / n x bytes / time (bytes/s)."""
    return 2 * (ranks - 1) / ranks * m.op.shape["bytes"] / m.measured_s


def stream_floor_bytes(device) -> float:
    """Transfers at least twice the L2 (re-runs of one op cannot be served from it): HBM rates."""
    l2 = device.memory_level("l2")
    return 2.0 * (l2.capacity_bytes if l2 is not None else 0.0)


def stream_rates(rows, label: str, floor_bytes: float) -> list[float]:
    """Bytes moved per second by the memory-bound rows of at least ``floor_bytes`` whose label names
    ``label``."""
    return [m.op.bytes / m.measured_s for m in rows
            if m.kind in ("norm", "elementwise") and f" {label} " in f" {m.label} " and m.op.bytes >= floor_bytes]


def a100_notes(rows_by_source: dict, device) -> str:
    aic, vidur = rows_by_source.get("aiconfigurator", []), rows_by_source.get("vidur", [])
    lines = ["## Notes on the data", "",
             "Figures about the rows themselves (what the kernels reached) are computed from them by "
             "validate/facts.py.", "",
             "- aiconfigurator: A100-SXM4-80GB, vLLM 0.14 kernels in CUDA graphs; the attention op includes the "
             "KV-cache write (rows carry kv_cache_write=true)."]
    fr = gemm_peak_fractions(aic, device)
    if fr:
        lines.append(
            "- aiconfigurator GEMMs run in short CUDA-graph bursts with weights never initialised (vLLM's "
            "RowParallelLinear allocates them with torch.empty): no power limit, so its "
            f"{len(fr)} GEMMs of 0.2 TFLOP or more reach {statistics.median(fr):.2f} of the dense peak at the "
            f"median and up to {max(fr):.2f}; its rows carry power=full. Other rows are priced at the "
            "DVFS clock of their own draw (power=burst: a die near idle temperature).")
    inv = gemm_inversions(aic)
    if inv:
        n_inv, n_pairs, (small, large, t_small, t_large) = inv
        lines.append(
            f"- aiconfigurator's GEMM grid is not monotone: of its {n_pairs:,} pairs of shapes one grid step "
            f"apart, {n_inv} run more than 15% faster on the larger problem (e.g. m x n x k {small} takes "
            f"{1e6 * t_small:.1f} us, {large} {1e6 * t_large:.1f} us): cuBLAS's heuristics pick a slower kernel "
            "for one of them. simhw prices the fastest of its tile shapes and split factors and misses one side "
            "of each such pair, but for the one switch it prices: for m > 16, cuBLAS's one-stage 32 x 32 "
            "kernel only from 2^21 multiply-adds on (gemm_light_min_macs), about 1.2 us faster than what it "
            "runs below.")
    if vidur:
        fr = gemm_peak_fractions(vidur, device)
        text = "- vidur: the A100 variant is not stated"
        if fr:
            text += (f"; its {len(fr)} GEMMs of 0.2 TFLOP or more reach {_q(fr, 0.1):.2f}-{_q(fr, 0.9):.2f} "
                     f"of the dense peak (10th-90th percentile; median {statistics.median(fr):.2f}), below even "
                     "the power-limited model's sustained MAMF fraction, while its memory-bound ones run faster "
                     "than the model")
        text += (". The `size` column of its network files is bytes (vidur's CollectiveWrapper writes "
                 "`size * 2`; the element counts it sweeps appear doubled), not fp16 elements.")
        text += _vidur_network(vidur) + _vidur_kernels(vidur, device, aic) + vidur_card_check(vidur)
        lines.append(text)
    lines += ["- llmcompass: wall clock around one eager PyTorch op (rows carry timing=wall; the spec's "
              "host_launch_gap is added), so small ops measure Python dispatch; its LayerNorm and GELU "
              "functions are torch.compile'd, whose every call also runs Dynamo's guard checks (timing=compiled: "
              "host_compiled_call_gap instead).", ""]
    return "\n".join(lines)


def gemm_inversions(rows, ratio: float = 1.15):
    """(pairs where the larger GEMM is more than ``ratio`` times faster, neighbouring pairs, the
    largest such inversion among rows of 5 us or more as (small shape, large shape, small s, large s))
    over a grid of GEMM rows: pairs one grid step apart in one of m, n, k; None without rows."""
    times: dict = {}
    for m in rows:
        if m.kind == "gemm":
            s = m.op.shape
            times.setdefault((s["m"], s["n"], s["k"]), []).append(m.measured_s)
    if not times:
        return None
    t = {key: statistics.median(v) for key, v in times.items()}
    axes = [sorted({key[i] for key in t}) for i in range(3)]
    nxt = [dict(zip(a, a[1:])) for a in axes]
    pairs = inversions = 0
    worst = None
    for key, small in t.items():
        for i in range(3):
            up = nxt[i].get(key[i])
            big_key = key[:i] + (up,) + key[i + 1:] if up is not None else None
            if big_key not in t:
                continue
            pairs += 1
            large = t[big_key]
            if small > ratio * large:
                inversions += 1
                if small >= 5e-6 and (worst is None or small / large > worst[2] / worst[3]):
                    worst = (key, big_key, small, large)
    if worst is None:
        return None
    fmt = lambda k: " x ".join(f"{v:g}" for v in k)   # noqa: E731
    return inversions, pairs, (fmt(worst[0]), fmt(worst[1]), worst[2], worst[3])


LONG_GEMM_S = 1e-3                  # vidur GEMMs long enough for the power limit to bind
MID_GEMM_S = (5e-5, 5e-4)           # ... and mid-size ones, too short for it in vidur's loop


def vidur_card_check(rows, cards=("dgx-a100", "a100-pcie")) -> str:
    """vidur's docs use the same A100 compute profiles for the DGX A100 (SXM4, 400 W) and Azure's
    NC A100 v4 (PCIe, 300 W) node types. Its GEMMs priced on each card's spec: median signed error
    of the long (>= LONG_GEMM_S) and the mid-size (MID_GEMM_S) rows."""
    from simhw import load_hw
    from simhw.validation import evaluate, group_stats

    gemms = [m for m in rows if m.kind == "gemm"]
    long = {m.line for m in gemms if m.measured_s >= LONG_GEMM_S}
    mid = {m.line for m in gemms if MID_GEMM_S[0] <= m.measured_s < MID_GEMM_S[1]}
    if not long or not mid:
        return ""
    parts, fits_both, long_faster = [], False, True
    for card in cards:
        res = evaluate(gemms, load_hw(card), "vidur").rows
        bias = [group_stats([r for r in res if r.line in lines]).bias for lines in (long, mid)]
        parts.append(f"{card} {bias[0]:+.1%} / {bias[1]:+.1%}")
        fits_both |= max(abs(b) for b in bias) <= 0.05
        long_faster &= bias[0] < bias[1]
    text = (f" Which A100 ran its GEMMs is not known (vidur uses the same profiles for SXM4 and PCIe "
            f"nodes): the median signed error of its GEMMs of {LONG_GEMM_S * 1e3:.0f} ms or more / of "
            f"{MID_GEMM_S[0] * 1e6:.0f}-{MID_GEMM_S[1] * 1e6:.0f} us is " + ", ".join(parts) + " on each "
            "card's spec (power=burst)" + ("" if fits_both else "; neither card's power limit fits both "
            "within 5%") + (": the long rows, run back to back, are throttled more than the model's "
            "per-kernel clock gives, relative to the mid-size ones" if long_faster and not fits_both else "")
            + ".")
    return text + _cool_a100(gemms, long)


def _cool_a100(gemms, long: set) -> str:
    """vidur's GEMMs on the A100 spec as shipped (its hot_flop_factor carried over from the H100; the
    rows' held_s is 22 blocks of their point) and with a die that does not warm (factor 1)."""
    from simhw import load_hw
    from simhw.validation import evaluate, group_stats
    from simhw.validation.training import cool_a100_node

    a100 = load_hw("a100")
    if a100.hot_flop_factor == 1.0 or not any(m.held_s for m in gemms):
        return ""
    out = []
    for dev in (a100, cool_a100_node().device):
        res = evaluate(gemms, dev, "vidur").rows
        st, lg = group_stats(res), group_stats([r for r in res if r.line in long])
        out.append(f"{st.median_ape:.1%} median, {st.p90_ape:.1%} p90 and a {lg.bias:+.1%} bias on the long rows")
    return (f" With the A100's hot-die factor carried over from the H100 (hot_flop_factor {a100.hot_flop_factor:g}, "
            f"hot_time_constant {a100.hot_time_constant_s:g} s; each row held for its point's 22 blocks) its GEMMs "
            f"come out at {out[0]}; with a die that does not warm (factor 1), at {out[1]}.")


def _vidur_network(rows) -> str:
    out = []
    ar = [bus_bandwidth(m, n) for m, n, _ in _collectives(rows, "all_reduce", True)]
    sr = [m.op.shape["bytes"] / m.measured_s for m, _, _ in _collectives(rows, "send_recv", True)]
    if ar and sr:
        out.append(f" Inside a node its all_reduce reaches {max(ar) / 1e9:.0f} GB/s bus bandwidth and its "
                   f"send_recv {max(sr) / 1e9:.0f} GB/s at most.")
    p2p = [m.op.shape["bytes"] / m.measured_s for m, _, per in _collectives(rows, "send_recv", False) if per == 1]
    if p2p:
        out.append(f" Across nodes its fabric is much slower than a DGX's HDR InfiniBand: one GPU per node "
                   f"moves at most {max(p2p) / 1e9:.1f} GB/s point to point (HDR: 25 GB/s per NIC)")
        two = {}
        for m, n, per in _collectives(rows, "all_reduce", False):
            if n == 2 * per:
                two[per] = max(two.get(per, 0.0), bus_bandwidth(m, n))
        if len(two) > 1:
            base = two[min(two)]
            ratios = " : ".join(f"{two[k] / base:.1f}" for k in sorted(two))
            out.append(f" and 2-node all_reduce bus bandwidth scales {ratios} with "
                       f"{', '.join(str(k) for k in sorted(two))} GPUs per node")
        out.append(", so the DGX-A100 spec is fast on those rows (they are shown apart).")
    return "".join(out)


def prefill_rates(rows, min_s: float = 2e-4) -> dict[str, list[tuple[float, float]]]:
    """Chunked-prefill attention rows of at least ``min_s``: (rate over the causal scores, rate over
    the whole chunk x cache rectangle) in FLOP/s, keyed "short chunk" (chunk <= 1/4 of the keys) and
    "chunk ~ keys" (chunk >= 0.95 of the keys). 4 x head_dim FLOPs per score (QK^T and PV)."""
    out: dict[str, list[tuple[float, float]]] = {"short chunk": [], "chunk ~ keys": []}
    for m in rows:
        s = m.op.shape
        if m.kind != "attention" or s["seq_q"] <= 1 or m.measured_s < min_s:
            continue
        q, kv = s["seq_q"], s["seq_kv"]
        per_score = 4 * s["head_dim"] * s["heads"] * s["batch"]
        causal = q * (kv - q) + q * (q + 1) / 2
        key = "short chunk" if q <= 0.25 * kv else "chunk ~ keys" if q >= 0.95 * kv else None
        if key:
            out[key].append((per_score * causal / m.measured_s, per_score * q * kv / m.measured_s))
    return out


def _vidur_prefill(rows, aic_rows, device) -> str:
    rates = prefill_rates(rows)
    if not all(rates.values()):
        return ""
    med = {k: (statistics.median(c for c, _ in v), statistics.median(r for _, r in v)) for k, v in rates.items()}
    (cs, rs), (cf, rf) = med["short chunk"], med["chunk ~ keys"]
    peak = device.peak(next(m.op.dtype for m in rows if m.kind == "attention"))
    text = (f" Its prefill rows (a chunk of new tokens against the cache) run, counted over the causal "
            f"scores, at {cs / 1e12:.0f} TFLOP/s when the chunk is short and {cf / 1e12:.0f} when it is the "
            f"whole sequence ({rs / 1e12:.0f} and {rf / 1e12:.0f} over the whole chunk x cache rectangle; "
            f"medians of rows of 0.2 ms or more): sarathi's wrapper hands the chunk's k and v to "
            f"flash_attn_with_kvcache, whose kernel appends them to the paged cache itself, every CTA the "
            f"new rows of its causal range again (once per q-block and per head of a GQA group), a cost "
            f"that grows with the chunk's square; simhw prices that copy (rows kv_append=true) and the "
            f"split heuristic mha_fwd_kvcache applies to few CTAs")
    whole = [c for c, _ in prefill_rates(aic_rows)["chunk ~ keys"]]
    if whole:
        text += (f"; aiconfigurator's causal prefills (FlashAttention-2 over a cache vLLM filled beforehand) "
                 f"run at {statistics.median(whole) / peak:.2f} of the dense peak over the causal scores")
    return text + "."


def _vidur_kernels(rows, device, aic_rows=()) -> str:
    out = " Its 2024 attention table is a paged kernel with 16-token blocks (vidur's own profiling setup)."
    out += _vidur_prefill(rows, aic_rows, device)
    floor = stream_floor_bytes(device)
    own = [r for label in ("input_layernorm", "post_attention_layernorm", "mlp_act", "attn_rope")
           for r in stream_rates(rows, label, floor)]
    add = stream_rates(rows, "add", floor)
    if own and add:
        threads = device.efficiency.threads_per_sm
        cap = device.compute_units * threads * 2 / device.main_memory.latency_s
        out += (f" Its RMSNorm, SiLU-and-mul and RoPE kernels (sarathi's) stream {_q(own, 0.1) / 1e12:.2f}-"
                f"{_q(own, 0.9) / 1e12:.2f} TB/s on transfers of {floor / 1e6:.0f} MB or more (twice the L2; 10th-90th "
                f"percentile) while its "
                f"torch add reaches {max(add) / 1e12:.2f} TB/s: one 2-byte load in flight per thread caps them "
                f"near {device.compute_units} SMs x {threads} threads x 2 B / "
                f"{device.main_memory.latency_s * 1e6:.1f} us = {cap / 1e12:.2f} TB/s (Little's law). The converter "
                "marks those rows load_bytes=2 and simhw prices them so (simhw/cost/latency.py: two round trips "
                "per element for a norm, one per input for the others); PyTorch's vectorised kernels stay "
                "bandwidth-bound.")
    out += _vidur_fresh_add(rows, device)
    return out


def _vidur_fresh_add(rows, device) -> str:
    """The residual add's apparent rate when the down projection's output (one of its two inputs)
    fits in L2 and when it does not (rows of 10 us or more, so the launch weighs little)."""
    adds = [m for m in rows if m.kind == "elementwise" and " add " in f" {m.label} " and m.measured_s >= 10e-6]
    fits = [m.op.bytes / m.measured_s for m in adds if fresh_l2_bytes(m.op, device) > 0]
    not_fit = [m.op.bytes / m.measured_s for m in adds if fresh_l2_bytes(m.op, device) == 0]
    if not fits or not not_fit:
        return ""
    return (f" Its residual add moves its three tensors' bytes at {statistics.median(fits) / 1e12:.2f} TB/s "
            f"(median of {len(fits)} rows of 10 us or more) when the down projection's output it reads fits in "
            f"the L2's resident share, against {statistics.median(not_fit) / 1e12:.2f} TB/s ({len(not_fit)} rows) "
            f"when it does not; HBM's peak is {device.main_memory.bandwidth_bytes_per_s / 1e12:.2f} TB/s. The "
            "converter marks the input each of these kernels reads just after its producer wrote it "
            "(fresh_reads) and simhw reads it from L2 when it fits (simhw/cost/roofline.py fresh_l2_bytes).")
