"""The workload's engine: block replaces the spec's serving-engine overheads (cost/estimate.py)."""
import pytest

import simhw
from simhw.workload.from_yaml import workload_from_dict

A100 = simhw.load_hw("a100")
BASE = {"model": "llama2-7b", "mode": "decode", "seq_len": 1024, "micro_batch": 8, "global_batch": 8,
        "decode": {"context_len": 1000, "new_tokens": 1}}


def _step(extra=None):
    return simhw.estimate(workload_from_dict({**BASE, **(extra or {})}), A100).step_time_s


def test_engine_block_parses_times():
    wl = workload_from_dict({**BASE, "engine": {"step_overhead": "2 ms", "per_sequence": "100 us"}})
    assert wl.engine.step_overhead_s == pytest.approx(2e-3)
    assert wl.engine.per_sequence_s == pytest.approx(1e-4)
    assert workload_from_dict(BASE).engine.step_overhead_s is None


def test_engine_block_replaces_the_spec_values():
    eff = A100.efficiency
    spec_engine = eff.engine_step_overhead_s + 8 * eff.engine_per_token_s
    zero = _step({"engine": {"step_overhead": 0, "per_sequence": 0}})
    assert _step() == pytest.approx(zero + spec_engine)
    assert _step({"engine": {"step_overhead": "10 ms", "per_sequence": "1 ms"}}) == pytest.approx(zero + 10e-3 + 8e-3)
    # only one of the two given: the other stays the spec's
    assert _step({"engine": {"step_overhead": "10 ms"}}) == pytest.approx(zero + 10e-3 + 8 * eff.engine_per_token_s)
