"""Host <-> device copy rows: pinned copies at host_copy_fraction of the link, pageable ones staged
through a pinned buffer at host_pageable_fraction of that; wall-clock rows add the host's dispatch gap."""
from __future__ import annotations

import pytest

import simhw
from simhw.spec.model import LinkKind
from simhw.validation.predict import predict_s
from simhw.validation.schema import parse_lines

CSV = """kind,op,bytes,pinned,timing,measured_s
copy,h2d,268435456,true,kernel,1
copy,h2d,268435456,false,kernel,1
copy,d2h,268435456,,kernel,1
copy,h2d,65536,true,wall,1
"""


def test_pageable_copies_run_at_the_staging_fraction_of_the_pinned_rate():
    hw = simhw.load_hw("h100")
    rows, bad = parse_lines(CSV.splitlines(), "copies.csv")
    assert not bad
    pinned, pageable, default, small = (predict_s(r, hw) for r in rows)
    link = hw.link(LinkKind.PCIE)
    eff = hw.efficiency
    assert pinned == pytest.approx(link.latency_s + 2 ** 28 / (link.bandwidth_bytes_per_s * eff.host_copy_fraction))
    assert (pageable - link.latency_s) == pytest.approx((pinned - link.latency_s) / eff.host_pageable_fraction)
    assert default == pytest.approx(pinned)                # pinned is the default
    assert 0.2 < eff.host_pageable_fraction < 0.5          # measured 0.23-0.42 (validate/data/)
    assert small == pytest.approx(link.latency_s + 65536 / (link.bandwidth_bytes_per_s * eff.host_copy_fraction)
                                  + eff.host_launch_gap_s)
