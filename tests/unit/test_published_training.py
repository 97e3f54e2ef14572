"""The published low-precision training rows (validate/data/published-training/) costed through
simhw.estimate: every row prices, Megatron-Bridge's within the errors the report states, and the
report section names each row and the recipe speed-ups."""
import re
from pathlib import Path

import pytest

from simhw.errors import DataError
from simhw.validation.published_training import published_training_rows, published_training_table

CSV = Path(__file__).resolve().parents[2] / "validate" / "data" / "published-training" / "throughput.csv"


@pytest.fixture(scope="module")
def rows():
    return published_training_rows(CSV)


def test_every_row_prices_and_megatron_bridge_rows_are_within_the_reported_errors(rows):
    """DGX-H100 within 6%; DGX-B200 within 18%, GB200 within 30% and GB300 within 20%, all fast
    (their specs are derived, unmeasured), which the report states."""
    assert len(rows) == 24
    bound = {"dgx-h100": 0.06, "dgx-b200": 0.18, "gb200-nvl72": 0.30, "gb300-nvl72": 0.20}
    for row, r in rows:
        assert r.measured_s > 0 and r.predicted_s > 0
        if row["source"].startswith("megatron"):
            assert abs(r.error) < bound[row["system"]], row


def test_the_report_section_lists_rows_and_speedups(rows):
    section, summary = published_training_table(rows)
    assert section.count("\n| megatron-bridge") == 22 and section.count("\n| torchao") == 2
    assert "nvfp4 over mxfp8: 1.23x" in section
    # the same recipe and layout on two systems: Blackwell Ultra's doubled exponential rate shows in
    # simhw's ratio (attention_exp_per_clock), though less than in the measured one
    gb300 = re.search(r"llama3-8b in fp8-current, gb300-nvl72 over gb200-nvl72: ([0-9.]+)x / ([0-9.]+)x", section)
    assert gb300 and float(gb300.group(1)) == pytest.approx(1.19, abs=0.005) and 1.07 < float(gb300.group(2)) < 1.19
    assert summary.count("\n") == 4        # Megatron-Bridge on four systems, torchao on one


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        published_training_rows(tmp_path / "none.csv")


def test_the_published_layouts_fit_in_device_memory():
    """The runs fit, so simhw's memory model should say so, costing each pipeline device on its
    own: it does for all, the tightest Llama3-70B in MXFP8 on GB300 (TP 1, PP 4 x VP 5) at 99%, and
    on GB200 Llama3.1-405B (16 x 4 x VP4: the chunks at the ends hold a layer fewer) at 98% of
    their capacities, which are derived, not measured."""
    import csv

    import simhw
    from simhw.validation.published_training import published_workload
    from simhw.workload.from_yaml import workload_from_dict

    used = []
    with CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            mem = simhw.estimate(workload_from_dict(published_workload(row), str(CSV)),
                                 simhw.load_hw(row["system"])).memory
            used.append((mem.peak_bytes / mem.capacity_bytes, row["model"], row["system"]))
    used.sort(reverse=True)
    assert used[0][1:] == ("llama3-70b", "gb300-nvl72") and 0.95 < used[0][0] < 1.0
    assert 0.95 < max(u for u, model, system in used if system == "gb200-nvl72") < used[0][0]
