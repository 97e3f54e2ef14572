"""Model ablations for validate/report.py: a source's rows priced again with one mechanism of the
cost model switched off, so REPORT.md shows what that mechanism buys on measured rows."""
from __future__ import annotations

import dataclasses

from simhw.validation import evaluate
from simhw.validation.predict import device_of
from simhw.validation.stats import group_stats


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def without_light_kernel(rows, hw, source: str, short_s: float) -> list[str]:
    """The source's GEMMs priced as the spec has them and again without the library's one-stage
    kernel (gemm_light_tile 0; cost/ctas.py light_gemm): all of them, and those measured under
    ``short_s`` seconds. Empty where the spec has no such kernel or the source no GEMMs."""
    dev = device_of(hw)
    gemms = [m for m in rows if m.kind == "gemm"]
    if not dev.efficiency.gemm_light_tile or not gemms:
        return []
    off = dataclasses.replace(dev, efficiency=dataclasses.replace(dev.efficiency, gemm_light_tile=0))
    plain = dataclasses.replace(hw, device=off) if hw is not dev else off
    out = []
    for name, spec in (("as priced", hw), ("without the one-stage kernel (gemm_light_tile 0)", plain)):
        res = evaluate(gemms, spec, source).rows
        st = group_stats(res)
        text = f"- GEMMs {name}: median {_pct(st.median_ape)}, p90 {_pct(st.p90_ape)}, bias {st.bias:+.1%}"
        short = [r for r in res if r.measured_s < short_s]
        if short:
            ss = group_stats(short)
            text += (f"; the {ss.n} under {short_s * 1e6:.0f} us: median {_pct(ss.median_ape)}, "
                     f"p90 {_pct(ss.p90_ape)}, bias {ss.bias:+.1%}")
        out.append(text)
    return ["", "The library's small one-stage GEMM kernel (cost/ctas.py light_gemm):", ""] + out
