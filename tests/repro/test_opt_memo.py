"""MEMO (Zhao et al., arXiv 2407.12117) §4.1 token-wise LP and §4.2 placement, seed-targets §2.

§2c [P]: max α s.t. (S_input + S_attn + α·S_others)/B_pcie ≤ T_fwd and
(n − 2)(S_input + S_attn + α·S_others) ≤ M_CPU. The LP must equal its closed form exactly
(tolerance 1e-7). The 7B / 1M-token numbers below are [D] (derived from §2a/§2b inputs; the
paper does not state α): TP = SP = 8 so each GPU holds 1/8 of every s·h tensor; the 2 TB host
memory per server is split over 8 GPUs; PCIe 25 GB/s is an assumption (A800, PCIe 4.0 x16).
"""
import pytest

pytest.importorskip("highspy")

from simhw.schedule import tokenwise as tw  # noqa: E402
from simhw.schedule.tokenwise import LayerActivations, MemoLPData, Placement, SavedTensorClass  # noqa: E402
from simhw.schedule.tokenwise import TokenwiseData  # noqa: E402

S, H, L, TP = 1 << 20, 4096, 32, 8
UNIT = S * H * 2 / TP  # one s·h bf16 tensor on one GPU: 1.074e9 B
HOST = 2e12 / 8


def data(t_fwd_s):
    # Fig. 4: 16·bsh skeletal elements per layer = input (1) + FlashAttention output (1) + 14 others
    return MemoLPData(input_bytes=UNIT, attn_bytes=UNIT, others_bytes=14 * UNIT,
                      pcie_bandwidth_bytes_per_s=25e9, layer_forward_time_s=t_fwd_s, num_layers=L,
                      host_capacity_bytes=HOST)


def test_skeletal_activation_total_is_4_tib():
    assert 16 * UNIT * TP * L == 4 * 2 ** 40  # §2b: "4096 GB" for 7B at s = 1M (exactly 4 TiB)


@pytest.mark.parametrize("t_fwd_s", [0.1, 0.2, 0.3, 0.5, 15.0])
def test_lp_equals_closed_form(t_fwd_s):
    r = tw.solve_memo(data(t_fwd_s))
    assert r.alpha == pytest.approx(tw.memo_alpha_closed_form(data(t_fwd_s)), abs=1e-7)


def test_host_memory_binds_at_one_million_tokens():
    """[D] A 7B layer forward at s = 1M on 8 GPUs takes seconds (attention ~4·s²·h FLOP), far above the
    0.333 s at which PCIe stops binding, so host memory binds: α = (M/(n−2) − 2·U)/(14·U) ≈ 0.411."""
    alpha = (HOST / (L - 2) - 2 * UNIT) / (14 * UNIT)
    r = tw.solve_memo(data(15.0))
    assert r.binding == "host memory"
    assert r.alpha == pytest.approx(alpha, abs=1e-7) and r.alpha == pytest.approx(0.4115, abs=1e-3)
    crossover_s = HOST / (L - 2) / 25e9
    assert tw.solve_memo(data(crossover_s * 0.9)).binding == "PCIe bandwidth"


def test_general_policy_reproduces_memo_alpha():
    P = Placement
    layer = LayerActivations(15.0, 30.0, (
        SavedTensorClass("input", UNIT, 0.0, frozenset({P.CPU})),
        SavedTensorClass("flash_out", UNIT, 0.0, frozenset({P.CPU})),
        SavedTensorClass("others", 14 * UNIT, 1.0, frozenset({P.CPU, P.RECOMPUTE}))))
    r = tw.solve(TokenwiseData(layers=(layer,) * L, device_capacity_bytes=80e9, host_capacity_bytes=HOST,
                               pcie_bandwidth_bytes_per_s=25e9, allow_exposed_transfer=False))
    others = [d.cpu_frac for d in r.decisions if d.tensor == "others" and d.layer < L - 2]
    assert sum(others) / len(others) == pytest.approx(tw.memo_alpha_closed_form(data(15.0)), abs=1e-6)
    assert r.host_bytes == pytest.approx(HOST, rel=1e-6)
    assert r.buffer_bytes == pytest.approx(2 * 16 * UNIT)  # two rotating layer buffers
