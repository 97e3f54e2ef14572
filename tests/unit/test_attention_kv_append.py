"""flash_attn_with_kvcache given the new k, v (measurement column kv_append): the kernel appends
them to the paged cache itself, every CTA the new rows of its causal range, and the API takes
FlashAttention-2's split heuristic (cost/roofline.py attention_time_s)."""
from __future__ import annotations

import pandas as pd
import pytest

import simhw
from simhw.cost.roofline import op_cost
from simhw.validation import frame_to_measurements


def _time(sq, skv, append, hw):
    row = dict(kind="attention", measured_s=1e-3, batch=1, seq_q=sq, seq_kv=skv, heads=32, kv_heads=4,
               head_dim=128, causal="true", paged="true", kv_append=str(append).lower(), dtype="fp16")
    (m,), bad = frame_to_measurements(pd.DataFrame([row]))
    assert not bad and m.op.shape["kv_append"] == float(append)
    return op_cost(m.op, hw).time_s


@pytest.fixture(scope="module")
def a100():
    return simhw.load_hw("a100")


def test_the_in_kernel_append_grows_with_the_chunks_square(a100):
    extra = {q: _time(q, q + 2048, True, a100) - _time(q, q + 2048, False, a100) for q in (512, 1024, 2048)}
    assert all(v > 0 for v in extra.values())
    assert extra[2048] / extra[1024] > 2.5 and extra[1024] / extra[512] > 2.0


def test_few_ctas_split_the_keys_on_the_kvcache_path(a100):
    """One 64-row q-block x 32 heads fill a third of the A100's CTA slots: mha_fwd_kvcache splits the
    4096 keys over more CTAs, so a short chunk against a long cache takes well under the unsplit time."""
    short = _time(64, 4096, True, a100)
    unsplit = _time(64, 4096, False, a100)       # vLLM's varlen path: the paged kernel unsplit
    assert short < 0.8 * unsplit
