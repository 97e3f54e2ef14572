"""MEMO (Zhao et al. 2024, arXiv 2407.12117) §1 / Fig. 1b (seed-targets §2b): for the 7B model on
8 A800 GPUs with TP = 8, offloading a layer's activations hides behind its forward only for
sequences of about 192K tokens and longer. simhw finds the crossing with its cost model and the
a800-memo node spec (PCIe Gen4 x16 shared by two GPUs per switch: an UNVERIFIED topology)."""
import pytest

import simhw
from simhw.sim.run import layer_offload_times
from simhw.workload.from_yaml import workload_from_dict


def _wl(s):
    return workload_from_dict({"model": "memo-7b", "mode": "train", "seq_len": s, "global_batch": 1,
                               "micro_batch": 1, "devices": 8, "parallelism": {"tp": 8, "sp": True},
                               "memory": {"flash_attention": True}})


def test_offload_hides_behind_forward_from_about_192k_tokens():
    hw = simhw.load_hw("a800-memo")
    lo, hi = 8192, 1 << 21
    assert layer_offload_times(_wl(lo), hw)[1] > layer_offload_times(_wl(lo), hw)[0]   # short: exposed
    assert layer_offload_times(_wl(hi), hw)[1] < layer_offload_times(_wl(hi), hw)[0]   # long: hidden
    while hi - lo > 1024:
        mid = (lo + hi) // 2 // 8 * 8
        fwd, copy = layer_offload_times(_wl(mid), hw)
        lo, hi = (lo, mid) if copy <= fwd else (mid, hi)
    print(f"simhw crossing: {hi} tokens (MEMO: ~192K)")
    assert hi == pytest.approx(192 * 1024, rel=0.3)
