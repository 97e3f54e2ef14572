"""The p-norm that joins a GEMM CTA's on-chip (tensor, L2) and HBM times (cost/ctas.py: overlap;
Efficiency.gemm_overlap): it charges for the stalls when both are close and leaves alone GEMMs that
one of them dominates."""
from __future__ import annotations

import dataclasses

import pytest

import simhw
from simhw.cost.ctas import overlap
from simhw.cost.roofline import gemm_time_s
from simhw.spec.model import DType


def test_overlap_is_the_max_for_large_p_and_a_p_norm_otherwise():
    assert overlap((3.0, 1.0, 2.0), 100.0) == 3.0
    assert overlap((2.0, 2.0), 5.0) == pytest.approx(2.0 * 2.0 ** 0.2)
    assert overlap((1.0, 1e-3), 5.0) == pytest.approx(1.0, rel=1e-9)
    assert overlap((0.0, 0.0), 5.0) == 0.0
    assert max(1.0, 0.7) <= overlap((1.0, 0.7), 5.0) <= 1.0 + 0.7


def _with_overlap(hw, p):
    return dataclasses.replace(hw, efficiency=dataclasses.replace(hw.efficiency, gemm_overlap=p))


@pytest.mark.parametrize("name", ["a100", "h100", "b200"])
def test_large_gemms_keep_their_speed_and_balanced_ones_pay(name):
    hw = simhw.load_hw(name)
    blended, perfect = hw, _with_overlap(hw, 100.0)
    big = (8192, 8192, 8192)                       # compute-bound: HBM time is a small part
    assert gemm_time_s(*big, 1, DType.BF16, blended)[0] == pytest.approx(
        gemm_time_s(*big, 1, DType.BF16, perfect)[0], rel=0.002)
    mid = (128, 4096, 4096)                         # tensor and HBM times of the same order
    t_blend = gemm_time_s(*mid, 1, DType.BF16, blended)[0]
    t_max = gemm_time_s(*mid, 1, DType.BF16, perfect)[0]
    assert t_max < t_blend < 2.0 ** (1 / hw.efficiency.gemm_overlap) * t_max * 1.0001


def test_hopper_stores_a_wave_under_the_next_main_loop():
    """gemm_epilogue_overlap (warp-specialized persistent kernels, sm90 and later): a GEMM of many
    waves saves every wave's stores but the last; a GEMM of one wave is unchanged; A100 (sm80
    multistage kernels) keeps its stores on the critical path."""
    h100 = simhw.load_hw("h100")
    assert h100.efficiency.gemm_epilogue_overlap and not simhw.load_hw("a100").efficiency.gemm_epilogue_overlap
    # waves only, every tile a ping-pong kernel's
    h100 = dataclasses.replace(h100, efficiency=dataclasses.replace(h100.efficiency, gemm_stream_k=False,
                                                                     gemm_pingpong_max_tile_elems=0))
    serial = dataclasses.replace(h100, efficiency=dataclasses.replace(h100.efficiency, gemm_epilogue_overlap=False))
    many = (8192, 8192, 8192)
    assert gemm_time_s(*many, 1, DType.BF16, h100)[0] < 0.98 * gemm_time_s(*many, 1, DType.BF16, serial)[0]
    one = (1024, 1024, 8192)        # 32 tiles of 128 x 256: fewer than the 132 SMs
    assert gemm_time_s(*one, 1, DType.BF16, h100)[0] == pytest.approx(gemm_time_s(*one, 1, DType.BF16, serial)[0])


def test_stream_k_fills_the_wave_a_data_parallel_grid_leaves_part_idle():
    """gemm_stream_k (CUTLASS sm90 stream-K scheduler): 512 x 11008 x 4096 has 172 tiles of 128 x 256
    on 132 SMs, so whole-tile waves leave 0.65 of the second wave idle; spreading the k-iterations
    evenly (plus the partial-tile fixup) is faster. A grid of fewer than two k-iterations per SM
    has nothing to spread, and A100 (sm80) has no stream-K kernels."""
    h100 = simhw.load_hw("h100")
    assert h100.efficiency.gemm_stream_k and not simhw.load_hw("a100").efficiency.gemm_stream_k
    waves = dataclasses.replace(h100, efficiency=dataclasses.replace(h100.efficiency, gemm_stream_k=False))
    shape = (512, 11008, 4096)
    assert gemm_time_s(*shape, 1, DType.BF16, h100)[0] < 0.9 * gemm_time_s(*shape, 1, DType.BF16, waves)[0]
    tiny = (1024, 1024, 128)        # 32 tiles x 2 k-iterations < 2 x 132
    assert gemm_time_s(*tiny, 1, DType.BF16, h100)[0] == pytest.approx(gemm_time_s(*tiny, 1, DType.BF16, waves)[0])
    # never slower than the waves alone: the library picks the faster kernel
    for shape in ((1, 4096, 4096), (128, 8192, 8192), (8192, 8192, 8192), (2048, 256, 4096)):
        assert gemm_time_s(*shape, 1, DType.BF16, h100)[0] <= gemm_time_s(*shape, 1, DType.BF16, waves)[0]


def test_epilogue_overlap_must_be_a_boolean(tmp_path):
    from simhw.errors import SpecError
    path = tmp_path / "bad.yaml"
    path.write_text("extends: h100\nname: bad-gpu\nefficiency:\n  gemm_epilogue_overlap: maybe\n")
    with pytest.raises(SpecError, match=r"efficiency\.gemm_epilogue_overlap: 'maybe' must be true or false") as err:
        simhw.load_hw(str(path))
    assert "bad.yaml" in str(err.value)


def test_hopper_cooperative_tiles_store_after_their_main_loop():
    """gemm_pingpong_max_tile_elems (8192 on the H100): tiles of more outputs run cooperative
    kernels, which store each tile after its main loop. A short-k GEMM with a large output (a
    training step's up projection, 4096 x 10240 x 2560: 84 MB of output) pays its stores; a long-k
    GEMM of the same tiles far less; stream-K kernels follow the same rule."""
    h100 = simhw.load_hw("h100")
    assert h100.efficiency.gemm_pingpong_max_tile_elems == 8192
    overlap = dataclasses.replace(h100, efficiency=dataclasses.replace(h100.efficiency, gemm_pingpong_max_tile_elems=0))

    def slower(shape, spec=h100, base=overlap):
        return gemm_time_s(*shape, 1, DType.BF16, spec)[0] / gemm_time_s(*shape, 1, DType.BF16, base)[0] - 1

    short, long_k = (4096, 10240, 2560), (4096, 2560, 10240)
    assert slower(short) > 0.08 and slower(long_k) < 0.03
    waves = dataclasses.replace(h100, efficiency=dataclasses.replace(h100.efficiency, gemm_stream_k=False))
    waves_overlap = dataclasses.replace(overlap, efficiency=dataclasses.replace(overlap.efficiency, gemm_stream_k=False))
    assert slower(short, waves, waves_overlap) > 0.08
    # B200 (sm100: the accumulators sit in tensor memory) keeps every tile's stores overlapped
    assert simhw.load_hw("b200").efficiency.gemm_pingpong_max_tile_elems == 0
