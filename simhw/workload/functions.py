"""FLOPs per element of elementwise functions, counted as the FP32 peak counts them (an FMA is 2),
shared by the trace rules (trace/rules.py) and measurement rows that name their function
(validation/schema.py: ``op`` of an elementwise row).

Most functions are a handful of FLOPs and their kernels stay bound by HBM. GELU in its erf form
(PyTorch's default) is not: CUDA's erff, a polynomial or an exponential path, makes it about 40
FP32 instructions per element (80 FLOPs), its backward (erf and the normal density) about 50. So a
bf16 GELU is bound by the SMs on H100 and H200 alike (simhw's own runs and training-step traces,
validate/data/). These counts are estimates from the math library's structure, not measured.
"""
from __future__ import annotations

ELEMENTWISE_FLOPS = {
    "add": 1.0, "sub": 1.0, "mul": 1.0, "div": 1.0, "copy": 0.0, "relu": 1.0,
    "silu": 4.0, "gelu": 80.0, "gelu_backward": 100.0,
}


def function_flops(name: str) -> float:
    """FLOPs per element of ``name`` (KeyError for a name not in ELEMENTWISE_FLOPS)."""
    return ELEMENTWISE_FLOPS[name]
