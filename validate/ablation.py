"""Model ablations for validate/report.py: a source's rows priced again with one mechanism of the
cost model switched off, so REPORT.md shows what that mechanism buys on measured rows."""
from __future__ import annotations

from simhw.calibrate import with_efficiency
from simhw.validation import evaluate
from simhw.validation.predict import device_of
from simhw.validation.stats import group_stats


def without_light_kernel(rows, hw, source: str, short_s: float) -> list[str]:
    """The source's GEMMs priced as the spec has them and again without the library's one-stage
    kernel (gemm_light_tile 0; cost/ctas.py light_gemm): all of them, and those measured under
    ``short_s`` seconds. Empty where the spec has no such kernel or the source no GEMMs."""
    gemms = [m for m in rows if m.kind == "gemm"]
    if not device_of(hw).efficiency.gemm_light_tile or not gemms:
        return []
    out = []
    for name, spec in (("as priced", hw),
                       ("without the one-stage kernel (gemm_light_tile 0)", with_efficiency(hw, gemm_light_tile=0))):
        res = evaluate(gemms, spec, source).rows
        st = group_stats(res)
        text = f"- GEMMs {name}: median {st.median_ape:.1%}, p90 {st.p90_ape:.1%}, bias {st.bias:+.1%}"
        short = [r for r in res if r.measured_s < short_s]
        if short:
            ss = group_stats(short)
            text += (f"; the {ss.n} under {short_s * 1e6:.0f} us: median {ss.median_ape:.1%}, "
                     f"p90 {ss.p90_ape:.1%}, bias {ss.bias:+.1%}")
        out.append(text)
    return ["", "The library's small one-stage GEMM kernel (cost/ctas.py light_gemm):", ""] + out
