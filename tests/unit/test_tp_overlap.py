"""parallelism.tp_overlap: sequence-parallel all-gathers and reduce-scatters run under the GEMM they
feed or drain (Megatron-LM --tp-comm-overlap), so only what the GEMM leaves shows; estimate and
simulation agree; Megatron-Bridge's Llama3-70B run on 64 H100 (TP 4, PP 8, VP 5: overlap on in its
recipes) comes out within a few percent."""
import pytest

from simhw.cli import main
from simhw.cost.estimate import OpCoster, estimate
from simhw.errors import WorkloadError
from simhw.sim.run import simulate_step
from simhw.spec.load import load_hw
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind, Phase
from simhw.workload.transformer import build_graph


def _wl(overlap=True, **raw):
    base = {"model": "llama3-70b", "mode": "train", "seq_len": 8192, "micro_batch": 1, "global_batch": 128,
            "devices": 64, "dtype": "bf16", "optimizer": "adamw", "precision": "fp8-current",
            "parallelism": {"tp": 4, "pp": 8, "interleave": 5, "schedule": "interleaved", "sp": True,
                            "tp_overlap": overlap},
            "memory": {"zero_stage": 1}}
    base.update(raw)
    return workload_from_dict(base)


def test_each_tp_collective_is_paired_with_its_gemm():
    ops = build_graph(_wl(), compact=True).ops
    names = [op.name for op in ops]
    tp = [op for op in ops if op.kind is OpKind.COLLECTIVE and op.name.startswith(("tp_attn", "tp_mlp"))]
    assert tp and all("hide_m" in op.shape for op in tp)
    fwd = {op.name: op for op in tp if op.phase is Phase.FWD}
    by_name = {op.name: op for op in ops}
    # forward: the reduce-scatter after the attention block drains attn_out, its all-gather feeds mlp_up
    rs, ag = fwd[f"tp_attn.{ops[names.index('attn_out.0')].layer}"], fwd["tp_attn.0.ag"]
    assert rs.shape["hide_k"] == by_name["attn_out.0"].shape["k"]
    assert ag.shape["hide_n"] == by_name["mlp_up.0"].shape["n"]
    assert all("hide_m" not in op.shape for op in build_graph(_wl(False), compact=True).ops)


def test_only_what_the_gemm_does_not_cover_is_exposed():
    hw = load_hw("dgx-h100")
    on, off = (build_graph(_wl(v), compact=True).ops for v in (True, False))
    coster_on, coster_off = OpCoster(hw, _wl(True)), OpCoster(hw, _wl(False))
    for a, b in zip(on, off):
        if a.kind is OpKind.COLLECTIVE and "hide_m" in a.shape:
            t_on, t_off = coster_on.full(a).time_s, coster_off.full(b).time_s
            assert 0.0 <= t_on < t_off


def test_overlap_shortens_the_step_and_simulation_agrees():
    hw = load_hw("dgx-h100")
    on, off = estimate(_wl(True), hw), estimate(_wl(False), hw)
    assert on.time_breakdown_s["communication"] < 0.5 * off.time_breakdown_s["communication"]
    assert on.step_time_s < off.step_time_s
    assert simulate_step(_wl(True), hw, keep_tasks=False).step_time_s == pytest.approx(on.step_time_s, rel=0.02)


def test_megatron_bridge_llama3_70b_on_64_h100():
    """Published 1602 tokens/s/GPU (25.11); simhw 1602 with the overlap, 1402 without."""
    per_gpu = estimate(_wl(), load_hw("dgx-h100")).tokens_per_s / 64
    assert per_gpu == pytest.approx(1602, rel=0.05)


def test_overlap_needs_sequence_parallelism(capsys):
    with pytest.raises(WorkloadError, match="set sp: true and tp > 1"):
        _wl(parallelism={"tp": 4, "tp_overlap": True})
    assert main(["estimate", "workloads/llama2-7b-train.yaml", "--hw", "h100", "--set",
                 "parallelism.tp_overlap=true"]) == 2
    assert "tp_overlap" in capsys.readouterr().err
