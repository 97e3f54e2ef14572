"""``simhw trace summarize``'s GPU timeline: span, busy (union over streams) and idle time."""
from __future__ import annotations

from pathlib import Path

import pytest

from simhw.trace.summary import gpu_timeline, render_table, summarize

ROOT = Path(__file__).resolve().parents[2]


def rec(ts_us, dur_us, name="k", device=0, stream=7):
    return (ts_us, dur_us, 10, name, device, stream, None, 0, 0)


def test_union_over_streams_and_gaps():
    records = [rec(0, 10, "a"), rec(5, 10, "b", stream=8),       # overlap on two streams: busy 0-15
               rec(115, 5, "c"),                                  # 100 us gap (long)
               rec(130, 10, "d"),                                 # 10 us gap
               rec(0, 4, "x", device=1), rec(54, 1, "y", device=1)]
    t0, t1 = gpu_timeline(records)
    assert t0["span_s"] == pytest.approx(140e-6) and t0["busy_s"] == pytest.approx(30e-6)
    assert t0["idle_s"] == pytest.approx(110e-6) and t0["gaps"] == 2
    assert t0["long_gaps"] == 1 and t0["long_gaps_s"] == pytest.approx(100e-6)
    assert [g["before"] for g in t0["longest_gaps"]] == ["c", "d"]
    assert t1["device"] == 1 and t1["busy_s"] == pytest.approx(5e-6) and t1["long_gaps"] == 1


def test_real_eager_step_waits_on_its_host():
    """The profiled 134 M-parameter eager step (validate/data, H100): its forward is host-bound under
    the profiler, so the GPU idles about 8 ms of its 56 ms."""
    path = ROOT / "validate/data/h100-2026-11-26/train_e2e_12x768_trace.json.gz"
    s = summarize(path)
    (t,) = s["gpu_timeline"]
    assert t["span_s"] == pytest.approx(56.0e-3, rel=0.01)
    assert t["busy_s"] == pytest.approx(s["measured_gpu_s"], rel=0.01)
    assert t["idle_s"] == pytest.approx(8.0e-3, rel=0.02) and t["long_gaps"] > 40
    # the gaps are charged to the phase whose launch ended them: nearly all in the forward
    by_phase = t["idle_by_phase_s"]
    assert sum(by_phase.values()) == pytest.approx(t["idle_s"], rel=1e-6)
    assert set(by_phase) == {"fwd", "bwd", "optimizer"} and by_phase["fwd"] > 0.8 * t["idle_s"]
    text = render_table(s)
    assert "idle 8.0" in text and "idle by the phase whose launch ended it: fwd 7.1" in text


def test_gaps_charged_to_the_launching_phase():
    records = [rec(0, 10, "a"), rec(30, 10, "b"), rec(100, 10, "c")]
    phases = {"b": "fwd", "c": "bwd"}
    (t,) = gpu_timeline(records, phase_of=lambda r: phases.get(r[3]))
    assert t["idle_by_phase_s"] == {"fwd": pytest.approx(20e-6), "bwd": pytest.approx(60e-6)}
