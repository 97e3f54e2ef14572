"""ZeRO-2 keeps only its shard of the gradients, so it reduce-scatters every micro-batch's gradients
(DeepSpeed's bucketed reduction, Megatron FSDP's optim_grads) where ZeRO-1 reduces once per step."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict


def _wl(zero: int, seq_len: int):
    return workload_from_dict({"name": "z", "model": "llama2-7b", "mode": "train", "seq_len": seq_len,
                               "micro_batch": 1, "global_batch": 64, "devices": 16, "dtype": "bf16",
                               "optimizer": "adamw", "parallelism": {"tp": 1, "pp": 1},
                               "memory": {"zero_stage": zero}}, "t")


def test_zero2_pays_a_reduction_per_micro_batch_that_its_backward_does_not_hide():
    """16 A100s on two nodes, 4 micro-batches each. Short sequences: each micro-batch's backward is
    shorter than its reduce-scatter over the NICs, so ZeRO-2 exposes three more of them than ZeRO-1
    (which it beats on memory: 1/16 of the gradients); long ones hide them."""
    hw = simhw.load_hw("dgx-a100")
    one, two = (simhw.estimate(_wl(z, 128), hw) for z in (1, 2))
    assert two.memory.gradients_bytes == pytest.approx(one.memory.gradients_bytes / 16)
    assert two.time_breakdown_s["data_parallel"] > 2 * one.time_breakdown_s["data_parallel"]
    assert simhw.simulate(_wl(2, 128), hw).step_time_s == pytest.approx(two.step_time_s, rel=0.06)
    long1, long2 = (simhw.estimate(_wl(z, 2048), hw) for z in (1, 2))
    assert long2.step_time_s == pytest.approx(long1.step_time_s, rel=1e-9)
