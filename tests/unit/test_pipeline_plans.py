"""`simhw simulate --plan` inside pipelines: recompute plans are replayed stage by stage (they
were ignored before), offloading plans are a clear error."""
from dataclasses import replace

import pytest

from simhw import simulate
from simhw.errors import PlanError
from simhw.schedule.plan import Action, Plan, TensorPolicy, builtin_plan
from simhw.spec.load import load_hw
from simhw.workload.builtins import builtin_model
from simhw.workload.spec import Loss, MemoryOptions, Mode, Optimizer, Parallelism, Recompute, Workload
from simhw.spec.model import DType

NODE = load_hw("dgx-h100")


def _wl(recompute=Recompute.NONE, pp=2, layers=8):
    # (a cut cross-entropy keeps the last stage's logits small, so the first stage holds the peak)
    model = replace(builtin_model("llama3-8b"), layers=layers)
    return Workload(name="t", model=model, mode=Mode.TRAIN, seq_len=4096, global_batch=8, micro_batch=1,
                    dtype=DType.BF16, optimizer=Optimizer.ADAMW, devices=pp * 2,
                    parallelism=Parallelism(tp=1, pp=pp, dp=2), memory=MemoryOptions(recompute=recompute, loss=Loss.CCE))


def test_full_recompute_plan_equals_the_workloads_own_full_recompute():
    plan = simulate(_wl(), NODE, builtin_plan("full-recompute"))
    own = simulate(_wl(Recompute.FULL), NODE)
    keep = simulate(_wl(), NODE, builtin_plan("none"))
    assert plan.step_time_s == pytest.approx(own.step_time_s, rel=0.01)
    assert plan.step_time_s > 1.2 * keep.step_time_s
    assert plan.peak_memory_bytes["device"] == pytest.approx(own.peak_memory_bytes["device"], rel=0.01)
    assert plan.peak_memory_bytes["device"] < keep.peak_memory_bytes["device"]


def test_a_per_layer_plan_recomputes_only_its_layers():
    """Recomputing the FFN tensors of stage 0's layers only slows and shrinks stage 0."""
    rec = TensorPolicy(Action.RECOMPUTE)
    per_layer = {i: {"mlp_act": rec, "mlp_mid": rec} for i in range(4)}
    some = simulate(_wl(), NODE, Plan("first-stage", layers=per_layer))
    keep = simulate(_wl(), NODE, builtin_plan("none"))
    assert keep.step_time_s < some.step_time_s < simulate(_wl(), NODE, builtin_plan("full-recompute")).step_time_s
    assert some.peak_memory_bytes["device"] < keep.peak_memory_bytes["device"]


def test_offloading_plans_are_an_error_inside_pipelines():
    with pytest.raises(PlanError, match="pipeline simulation .pp = 2. does not replay"):
        simulate(_wl(), NODE, builtin_plan("cpu-offload"))
