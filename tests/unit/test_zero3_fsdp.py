"""ZeRO-3 / FSDP FULL_SHARD (cost/estimate.py): every micro-batch gathers the sharded parameters
before its forward and again before its backward and reduce-scatters its gradients, layer by layer,
each gather prefetched under the previous layer's compute; what the compute does not cover, and one
layer's gather and reduction, are exposed per micro-batch."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict

BASE = {"model": "llama2-7b", "mode": "train", "dtype": "bf16", "micro_batch": 1, "global_batch": 256,
        "devices": 64, "parallelism": {"tp": 1, "pp": 1}, "memory": {"flash_attention": True}}


def _estimate(seq, zero, ops=False):
    wl = workload_from_dict({**BASE, "seq_len": seq, "memory": {**BASE["memory"], "zero_stage": zero}})
    return wl, simhw.estimate(wl, simhw.load_hw("dgx-a100"), ops=ops)


def test_short_micro_batches_expose_the_per_micro_batch_gathers():
    wl, r = _estimate(256, 3, ops=True)
    gather = next(o.time_s for o in r.ops if o.name == "dp_param_gather")
    reduce = next(o.time_s for o in r.ops if o.name == "dp_grad_reduce")
    fwd = sum(o.time_s for o in r.ops if o.phase == "fwd")
    bwd = sum(o.time_s for o in r.ops if o.phase in ("bwd", "recompute"))
    assert gather > fwd                                   # 256 tokens: the gathers outlast the forward
    per_mb = max(0.0, gather - fwd) + max(0.0, gather + reduce - bwd) + (2 * gather + reduce) / wl.model.layers
    assert r.time_breakdown_s["data_parallel"] == pytest.approx(wl.microbatches * per_mb, rel=1e-9)
    _, zero1 = _estimate(256, 1)
    assert r.step_time_s > zero1.step_time_s and zero1.time_breakdown_s["data_parallel"] < per_mb


def test_long_micro_batches_hide_them_but_one_layer():
    wl, r = _estimate(4096, 3, ops=True)
    gather = next(o.time_s for o in r.ops if o.name == "dp_param_gather")
    reduce = next(o.time_s for o in r.ops if o.name == "dp_grad_reduce")
    exposed = wl.microbatches * (2 * gather + reduce) / wl.model.layers
    assert r.time_breakdown_s["data_parallel"] == pytest.approx(exposed, rel=1e-9)
    assert exposed < 0.02 * r.step_time_s
