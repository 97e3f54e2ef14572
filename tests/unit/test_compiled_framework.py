"""``framework: compiled`` and ``optimizer_kernel`` (workload/eager.py): torch.compile'd blocks
around autocast casts, and torch.optim's fused update."""
from __future__ import annotations

import pytest

import simhw
from simhw.cost.memory import memory_breakdown
from simhw.errors import WorkloadError
from simhw.workload.eager import FUSED_STEP
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind
from simhw.workload.spec import Optimizer, OptimizerKernel
from simhw.workload.transformer import build_graph
from tests.unit.test_eager_framework import gpt


def ops(framework: str = "compiled", **over) -> dict:
    return {op.name: op for op in build_graph(workload_from_dict(gpt(framework, **over), "t")).ops}


def test_compiled_keeps_the_autocast_casts_and_fp32_gradients_but_not_the_aten_kernels():
    c, e, f = ops(), ops("eager"), ops("fused")
    casts = [n for n in c if n.startswith("autocast.")]
    assert casts and set(casts) == {n for n in e if n.startswith("autocast.")}
    assert any(n.startswith("grad_fp32.") for n in c)
    # Inductor's fused norms and loss, not aten's row kernels and log-softmax
    assert "row" not in next(op for op in c.values() if op.kind is OpKind.NORM).shape
    assert "log_softmax" not in c and "loss" in c
    # the residual add reads the fp32 stream and the bf16 branch and writes fp32: 10 B against 6
    assert c["residual1.0"].bytes == pytest.approx(f["residual1.0"].bytes * 10 / 6)


def test_the_compiled_loss_reads_the_bf16_logits_instead_of_fp32_copies():
    c, f = ops(), ops("fused")
    n = 4 * 1024 * 32000
    assert c["loss"].input_bytes == pytest.approx(4 * n) and c["loss.bwd"].bytes == pytest.approx(4 * n)
    assert c["loss"].bytes + c["loss.bwd"].bytes < 0.5 * (f["loss"].bytes + f["loss.bwd"].bytes)


@pytest.mark.parametrize("framework, kernel, per_param", [("compiled", None, 28), ("eager", "fused", 28),
                                                         ("eager", None, 84), ("compiled", "foreach", 84)])
def test_the_optimizer_kernel_sets_the_update_traffic(framework, kernel, per_param):
    over = {"optimizer_kernel": kernel} if kernel else {}
    step = ops(framework, **over)["optimizer_step"]
    assert step.bytes == pytest.approx(per_param * step.shape["elements"])
    assert sum(FUSED_STEP[Optimizer.ADAMW][:2]) == 28


def test_only_a_foreach_update_holds_a_transient_fp32_list():
    for framework, kernel, transient in (("eager", None, True), ("eager", "fused", False),
                                         ("compiled", None, False), ("compiled", "foreach", True)):
        over = {"optimizer_kernel": kernel} if kernel else {}
        wl = workload_from_dict(gpt(framework, **over), "t")
        assert wl.step_kernel is (OptimizerKernel.FOREACH if transient else OptimizerKernel.FUSED)
        assert (memory_breakdown(wl).optimizer_transient_bytes > 0) is transient


def test_compiled_training_keeps_only_the_bf16_logits():
    c = memory_breakdown(workload_from_dict(gpt("compiled"), "t"))
    f = memory_breakdown(workload_from_dict(gpt("fused", memory={"loss": "standard"}), "t"))
    assert c.logits_bytes == pytest.approx(4 * 1024 * 32000 * 2) and f.logits_bytes == pytest.approx(7 * c.logits_bytes)


def test_compiled_steps_sit_between_fused_and_eager():
    h100 = simhw.load_hw("h100")
    t = {fw: simhw.estimate(workload_from_dict(gpt(fw), "t"), h100).step_time_s for fw in ("fused", "compiled", "eager")}
    assert t["fused"] < t["compiled"] < t["eager"]


def test_an_optimizer_kernel_on_the_fused_framework_is_a_clear_error():
    with pytest.raises(WorkloadError, match="optimizer_kernel: applies to framework eager or compiled"):
        workload_from_dict(gpt("fused", optimizer_kernel="foreach"), "w.yaml")
    with pytest.raises(WorkloadError, match="optimizer_kernel: 'apex' is not allowed; choose one of: foreach, fused"):
        workload_from_dict(gpt("eager", optimizer_kernel="apex"), "w.yaml")
