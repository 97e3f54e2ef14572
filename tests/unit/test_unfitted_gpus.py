"""Physics checks on the GPUs no constant was fitted on (H100, H200, B200): the A100-fitted
structure, carried over, must land inside the public envelope of each chip.

Sources: aiconfigurator's H100 GEMMs reach up to ~937 of 989 TFLOP/s at full clock
(../shared/validation/aiconfigurator/README.md); FlashAttention-3 reaches up to 75% of H100 peak
forward (Shah et al. 2024); NVLink SHARP all-reduce on 8 H100s reaches ~480 GB/s bus bandwidth
(NVIDIA/nccl-tests#212); decode GEMVs stream under the HBM peak (the A100 sets: 0.6-0.85; simhw's own H100
and H200 runs, validate/data/: 0.83-0.89 for GEMVs of 134-470 MB).
"""
from __future__ import annotations

import pytest

import simhw
from simhw.spec.model import LinkKind
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines

CSV = """kind,m,n,k,dtype,op,bytes,ranks,batch,seq_q,seq_kv,heads,kv_heads,head_dim,causal,power_limited,measured_s
gemm,8192,8192,8192,bf16,,,,,,,,,,,false,1
gemm,1,16384,16384,bf16,,,,,,,,,,,false,1
attention,,,,bf16,,,,4,8192,8192,32,32,128,false,false,1
collective,,,,bf16,all_reduce,1073741824,8,,,,,,,,,1
"""


@pytest.mark.parametrize("name", ["h100", "h200", "b200"])
def test_carried_over_constants_land_in_each_chips_envelope(name):
    hw = simhw.load_hw(name)
    rows, bad = parse_lines(CSV.splitlines(), "unfitted.csv")
    assert not bad
    gemm, gemv, attn, allreduce = (predict_s(r, hw) for r in rows)
    peak = hw.peak(rows[0].op.dtype)
    assert 0.88 <= rows[0].op.flops / gemm / peak <= 0.95                    # full clock, large GEMM
    assert 0.60 <= rows[1].op.bytes / gemv / hw.main_memory.bandwidth_bytes_per_s <= 0.92
    assert 0.50 <= rows[2].op.flops / attn / peak <= 0.75                    # FlashAttention forward
    nvlink = hw.link(LinkKind.NVLINK).bandwidth_bytes_per_s
    busbw = 2 * 7 / 8 * rows[3].op.shape["bytes"] / allreduce
    assert 0.6 * nvlink <= busbw <= 1.1 * nvlink
