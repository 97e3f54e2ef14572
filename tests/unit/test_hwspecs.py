"""The shipped hardware registry (hwspecs/*.yaml) and the strict spec loader's errors."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from simhw.errors import SpecError
from simhw.spec import DeviceKind, DeviceSpec, DType, Efficiency, LinkKind, NodeSpec, load_hw
from simhw.spec.load import available_hw, hw_dirs

HWSPECS = Path(__file__).resolve().parents[2] / "hwspecs"
SHIPPED = sorted(HWSPECS.glob("*.yaml"))
ISSUE_NAMES = ["a100", "a100-40gb", "a800", "h100", "h100-pcie", "h200", "b200", "v100", "t4", "a10", "l4",
               "rtx2080ti", "rtx3090", "rtx4090", "mi300x", "dgx-a100", "dgx-h100", "a800-memo"]
GPUS = [n for n in ISSUE_NAMES if not n.startswith("dgx") and n != "a800-memo"]


# Every shipped spec ---------------------------------------------------------------------------

def test_registry_has_the_shipped_folder():
    assert HWSPECS in [d.resolve() for d in hw_dirs()]
    assert len(SHIPPED) >= 28


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_yaml_loads(path):
    spec = load_hw(str(path))
    assert spec.version == 1
    assert spec.source.strip()
    assert spec.name
    # the file stem is also a name the registry answers to
    assert load_hw(path.stem).name == spec.name


def test_available_hw_lists_every_file():
    rows = available_hw()
    names = {r[0] for r in rows}
    assert len(names) == len(SHIPPED)
    kinds = {r[1] for r in rows}
    assert {"gpu", "cpu", "nvme", "flash", "crossbar", "spatial", "node"} <= kinds


def test_aliases_are_unique_across_files():
    owner: dict[str, str] = {}
    for path in SHIPPED:
        raw = yaml.safe_load(path.read_text())
        for name in [path.stem, raw["name"], *(raw.get("aliases") or [])]:
            key = str(name).lower()
            assert owner.get(key, path.name) == path.name, f"{key} claimed by {owner[key]} and {path.name}"
            owner[key] = path.name


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_issue_names_resolve(name):
    spec = load_hw(name)
    assert name in spec.aliases or name == Path(spec.path).stem


@pytest.mark.parametrize("name", GPUS)
def test_every_gpu_has_peak_memory_power_efficiency(name):
    spec = load_hw(name)
    assert isinstance(spec, DeviceSpec) and spec.kind is DeviceKind.GPU
    assert DType.BF16 in spec.peak_flop_per_s or DType.FP16 in spec.peak_flop_per_s
    assert spec.main_memory.name in ("hbm", "dram")
    assert spec.main_memory.capacity_bytes > 1e9 and spec.main_memory.bandwidth_bytes_per_s > 1e11
    assert spec.tdp_w > spec.idle_w > 0
    assert spec.efficiency != Efficiency()
    assert 0 < spec.efficiency.compute_fraction <= 1
    assert spec.efficiency.gemm_tile_m >= 64 and spec.efficiency.gemm_tile_n >= 128
    assert spec.link(LinkKind.PCIE) is not None
    assert spec.compute_units > 0 and spec.clock_hz > 1e8
    # derived energy per FLOP exists for the main tensor format and is of the right size
    e = spec.flop_energy(DType.FP16)
    assert 1e-14 < e < 1e-10
    assert spec.die_area_m2 > 0 and spec.embodied_kgco2e > 0 and spec.lifespan_s > 0


# Sustained (power-limited, random-data) BF16 matmul fraction, stas00/ml-engineering MAMF table,
# for the specs whose compute_fraction is the full-clock figure (0.95)
# (all short runs: a die near idle temperature). H100/H200: the energy reproduces simhw's own
# 20-100 ms bursts of an 8192^3 GEMM after idle (0.79 of peak, validate/data/h100-2026-11-26/
# power_bursts.csv) with the operands' byte energy counted and that GEMM at its own full-clock rate
# (0.91 of peak: its cooperative kernel stores each tile after its main loop); this formula leaves
# both out, so the same energy reads 0.826 (H100) and 0.823 (H200, its idle 81 W)
MAMF = {"a100": 0.869, "a100-40gb": 0.869, "a800": 0.869, "h100": 0.826, "h200": 0.823, "b200": 0.776}


@pytest.mark.parametrize("name", GPUS)
def test_gpu_energy_per_flop_is_derived_from_tdp(name):
    """For every dtype with both a peak and an energy: where the sustained MAMF fraction is known,
    the full-clock draw above idle is (TDP - idle) / (MAMF / compute_fraction)^3 (DVFS), less
    power.active; elsewhere a GEMM at the compute fraction draws TDP."""
    spec = load_hw(name)
    cf = spec.efficiency.compute_fraction
    if name in MAMF:
        dynamic_w = (spec.tdp_w - spec.idle_w) / (MAMF[name] / cf) ** 3 - spec.active_w
    else:
        dynamic_w = spec.tdp_w - spec.idle_w - spec.active_w
    for dtype, energy in spec.energy_j_per_flop.items():
        peak = spec.peak_flop_per_s[dtype]
        assert energy == pytest.approx(dynamic_w / (cf * peak), rel=0.01), dtype


# Spot values against ../shared/hw-facts.md (traps in section 7) --------------------------------

def test_h100_dense_peak_and_datasheet_bandwidth():
    h100 = load_hw("h100")
    assert h100.peak_flop_per_s[DType.BF16] == pytest.approx(989.4e12)
    assert h100.peak_flop_per_s[DType.FP8] == pytest.approx(1979e12)
    assert h100.main_memory.bandwidth_bytes_per_s == pytest.approx(3.35e12)
    assert h100.main_memory.capacity_bytes == 85017493504      # PyTorch total_memory on the H100 80GB HBM3 (env.json)
    assert h100.sparsity_factor == 2
    assert h100.efficiency.gemm_tile_n == 256
    assert load_hw("h100-sxm").name == h100.name


def test_pcie_and_nvlink_are_per_direction():
    assert load_hw("h100").link(LinkKind.PCIE).bandwidth_bytes_per_s == pytest.approx(64e9)
    assert load_hw("a100").link(LinkKind.PCIE).bandwidth_bytes_per_s == pytest.approx(31.5e9)
    assert load_hw("h100").link(LinkKind.NVLINK).bandwidth_bytes_per_s == pytest.approx(450e9)
    assert load_hw("b200").link(LinkKind.NVLINK).bandwidth_bytes_per_s == pytest.approx(900e9)
    assert load_hw("v100").link(LinkKind.NVLINK).bandwidth_bytes_per_s == pytest.approx(150e9)


def test_a800_is_a100_with_half_the_nvlink():
    a100, a800 = load_hw("a100"), load_hw("a800")
    assert a800.link(LinkKind.NVLINK).bandwidth_bytes_per_s == pytest.approx(
        a100.link(LinkKind.NVLINK).bandwidth_bytes_per_s * 2 / 3)
    assert a800.link(LinkKind.NVLINK).bandwidth_bytes_per_s == pytest.approx(200e9)
    assert a800.peak_flop_per_s == a100.peak_flop_per_s
    assert a800.main_memory == a100.main_memory
    assert "UNVERIFIED" in a800.sources["links.nvlink.bandwidth"]


def test_a100_40gb_extends_a100():
    a40, a80 = load_hw("a100-40gb"), load_hw("a100")
    assert a40.main_memory.capacity_bytes == pytest.approx(39.5 * 2**30)
    assert a40.main_memory.bandwidth_bytes_per_s == pytest.approx(1555e9)
    assert a40.peak_flop_per_s == a80.peak_flop_per_s
    assert a40.tdp_w == a80.tdp_w
    assert a40.aliases == ("a100-40gb", "a100-sxm4-40gb")      # aliases are not inherited


def test_other_spot_values():
    assert load_hw("h200").main_memory.bandwidth_bytes_per_s == pytest.approx(4.8e12)
    assert load_hw("h200").peak_flop_per_s[DType.BF16] == pytest.approx(989.4e12)
    b200 = load_hw("b200")
    assert b200.peak_flop_per_s[DType.BF16] == pytest.approx(2250e12)
    assert b200.peak_flop_per_s[DType.FP4] == pytest.approx(9000e12)
    assert load_hw("h100-pcie").main_memory.bandwidth_bytes_per_s == pytest.approx(2.0e12)
    assert load_hw("t4").main_memory.name == "dram"
    # GeForce: FP32-accumulate tensor rate
    assert load_hw("rtx4090").peak_flop_per_s[DType.BF16] == pytest.approx(165.2e12)
    assert load_hw("rtx3090").peak_flop_per_s[DType.FP16] == pytest.approx(71e12)
    assert load_hw("rtx2080ti").peak_flop_per_s[DType.FP16] == pytest.approx(53.8e12)
    # no BF16 before Ampere
    for name in ("v100", "t4", "rtx2080ti"):
        assert DType.BF16 not in load_hw(name).peak_flop_per_s
    mi = load_hw("mi300x")
    assert mi.peak_flop_per_s[DType.BF16] == pytest.approx(1307.4e12)
    assert mi.main_memory.capacity_bytes == pytest.approx(192e9)
    assert mi.link(LinkKind.INFINITY_FABRIC) is not None


def test_cpus_nvme_flash_and_accelerators():
    xeon = load_hw("xeon-8480")
    assert xeon.kind is DeviceKind.CPU and xeon.main_memory.name == "dram"
    assert xeon.peak_flop_per_s[DType.BF16] == pytest.approx(114.7e12)
    assert load_hw("epyc-7742").tdp_w == pytest.approx(225)
    pm = load_hw("pm1733")
    assert pm.kind is DeviceKind.NVME and pm.main_memory.name == "flash"
    for key in ("seq_read", "seq_write", "rand_read_iops_4k", "rand_write_iops_4k", "queue_depth", "endurance_dwpd"):
        for name in ("pm1733", "pm9a3", "samsung-990pro", "optane-p5800x"):
            assert load_hw(name).extra[key] > 0, (name, key)
    assert pm.extra["seq_read"] == pytest.approx(6.4e9)
    assert load_hw("optane-p5800x").extra["endurance_dwpd"] == 100
    m1 = load_hw("m1max-ssd")
    assert m1.kind is DeviceKind.FLASH
    assert m1.extra["rand_read_4k"] == pytest.approx(1.25e9) and m1.extra["rand_read_32k"] == pytest.approx(2.25e9)
    fm = load_hw("fusemax")
    assert fm.kind is DeviceKind.SPATIAL
    assert [m.name for m in fm.memory] == ["dram", "glb"]
    assert fm.main_memory.bandwidth_bytes_per_s == pytest.approx(400 * 2**30)
    assert fm.memory_level("glb").capacity_bytes == 16 * 2**20
    assert fm.clock_hz == pytest.approx(940e6)
    assert fm.extra["mac_energy"] == pytest.approx(17.1645e-12)
    econ = load_hw("econ-t-asic-65nm")
    assert econ.tdp_w / econ.clock_hz == pytest.approx(2.375e-9)
    assert load_hw("memristor-crossbar-16nm").kind is DeviceKind.CROSSBAR


def test_nodes():
    dgx = load_hw("dgx-a100")
    assert isinstance(dgx, NodeSpec)
    assert dgx.device.name == load_hw("a100").name and dgx.device_count == 8
    assert dgx.intra_link.bandwidth_bytes_per_s == pytest.approx(300e9)
    assert dgx.host_link.bandwidth_bytes_per_s == pytest.approx(31.5e9 / 2)   # Gen4 x16 shared by 2 GPUs per switch
    assert dgx.network.bandwidth_bytes_per_s == pytest.approx(25e9)
    assert dgx.host_memory_bytes == pytest.approx(2e12)
    assert dgx.host_cpu.name == "epyc-7742" and dgx.drive_count == 8
    h = load_hw("dgx-h100")
    assert h.device.name == load_hw("h100").name
    assert h.intra_link.bandwidth_bytes_per_s == pytest.approx(450e9)
    assert h.host_link.bandwidth_bytes_per_s == pytest.approx(64e9)
    assert h.network.bandwidth_bytes_per_s == pytest.approx(50e9)
    memo = load_hw("a800-memo")
    assert memo.device.name == load_hw("a800").name and memo.host_memory_bytes == pytest.approx(2e12)


# extends ---------------------------------------------------------------------------------------

def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_extends_a_shipped_name(tmp_path):
    path = _write(tmp_path, "mine.yaml", """\
        name: my-a100
        version: 1
        kind: gpu
        extends: a100
        source: my measurements
        memory:
          hbm:
            bandwidth: 1800 GB/s
        """)
    spec = load_hw(str(path))
    base = load_hw("a100")
    assert spec.name == "my-a100" and spec.aliases == ()
    assert spec.main_memory.bandwidth_bytes_per_s == pytest.approx(1.8e12)
    assert spec.main_memory.capacity_bytes == base.main_memory.capacity_bytes
    assert spec.peak_flop_per_s == base.peak_flop_per_s
    assert "memory.hbm.bandwidth" not in spec.sources          # a plain value replaces the sourced mapping


def test_extends_a_sibling_file(tmp_path):
    _write(tmp_path, "parent.yaml", """\
        name: parent
        version: 1
        kind: nvme
        source: parent sheet
        memory: {flash: {capacity: 1 TB, bandwidth: 3 GB/s}}
        extra: {seq_read: 3 GB/s}
        """)
    child = _write(tmp_path, "child.yaml", """\
        name: child
        version: 1
        kind: nvme
        extends: parent.yaml
        source: child sheet
        extra: {seq_write: 2 GB/s}
        """)
    spec = load_hw(str(child))
    assert spec.main_memory.capacity_bytes == pytest.approx(1e12)
    assert spec.extra == {"seq_read": 3e9, "seq_write": 2e9}


def test_extends_cycle_is_an_error(tmp_path):
    _write(tmp_path, "a.yaml", "name: a\nversion: 1\nkind: gpu\nsource: s\nextends: b.yaml\n")
    b = _write(tmp_path, "b.yaml", "name: b\nversion: 1\nkind: gpu\nsource: s\nextends: a.yaml\n")
    with pytest.raises(SpecError, match="cycle"):
        load_hw(str(b))


# Bad specs: SpecError naming the key or YAML path ----------------------------------------------

GOOD = """\
name: test-gpu
version: 1
kind: gpu
source: test datasheet, table 1
compute:
  peak:
    bf16: 100 TFLOP/s
memory:
  hbm:
    capacity: 16 GB
    bandwidth: 1 TB/s
power:
  tdp: 300 W
"""


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    assert old in GOOD
    return _write(tmp_path, "bad.yaml", GOOD.replace(old, new))


def test_the_good_spec_loads(tmp_path):
    spec = load_hw(str(_write(tmp_path, "good.yaml", GOOD)))
    assert spec.peak(DType.BF16) == pytest.approx(1e14)
    assert spec.busy_w == 0.0 and spec.memory_byte_energy_j == 0.0


def test_active_power_and_transport_energy(tmp_path):
    text = GOOD.replace("  tdp: 300 W", "  tdp: 300 W\n  idle: 40 W\n  active: 70 W") \
        + "energy:\n  transport: 4 pJ/bit\n"
    spec = load_hw(str(_write(tmp_path, "good.yaml", text.replace("capacity: 16 GB", "capacity: 16 GB\n    energy: 6 pJ/bit"))))
    assert spec.busy_w == pytest.approx(110.0)
    assert spec.memory_byte_energy_j == pytest.approx(10e-12 * 8)


@pytest.mark.parametrize("old, new, pattern", [
    ("power:\n", "colour: red\npower:\n", r"unknown key 'colour'"),
    ("    bandwidth: 1 TB/s\n", "    bandwidth: 1 TB/s\n    speed: 2 TB/s\n", r"memory\.hbm: unknown key 'speed'"),
    ("  tdp: 300 W", "  tdp: 300 W\n  tpd: 1 W", r"power: unknown key 'tpd'.*did you mean 'tdp'"),
    ("    bf16: 100 TFLOP/s", "    bf17: 100 TFLOP/s", r"compute\.peak: unknown key 'bf17'"),
    ("capacity: 16 GB", "capacity: 16", r"memory\.hbm\.capacity: .*no unit"),
    ("bandwidth: 1 TB/s", "bandwidth: 1 TB", r"memory\.hbm\.bandwidth: cannot read"),
    ("tdp: 300 W", "tdp: 300 GB", r"power\.tdp: cannot read"),
    ("tdp: 300 W", "tdp: -300 W", r"power\.tdp: .*positive"),
    ("tdp: 300 W", "tdp: 300 W\n  active: 90 pJ", r"power\.active: cannot read"),
    ("power:\n", "energy:\n  transport: 6 W\npower:\n", r"energy\.transport: cannot read"),
    ("capacity: 16 GB", "capacity: 0 GB", r"memory\.hbm\.capacity: .*positive"),
    ("kind: gpu", "kind: tpu", r"kind: 'tpu' is not a device kind"),
    ("source: test datasheet, table 1\n", "", r"missing required key 'source'"),
    ("source: test datasheet, table 1", "source: '  '", r"source: every spec must cite"),
    ("version: 1", "version: 7", r"version: 7 is not supported"),
    ("    capacity: 16 GB\n", "", r"memory\.hbm: missing required key 'capacity'"),
])
def test_bad_specs_name_the_key(tmp_path, old, new, pattern):
    path = _bad(tmp_path, old, new)
    with pytest.raises(SpecError, match=pattern) as err:
        load_hw(str(path))
    assert "bad.yaml" in str(err.value)


def test_unknown_hw_name_suggests_the_closest():
    with pytest.raises(SpecError, match=r"unknown hardware 'h100x' \(did you mean 'h100'\?\)"):
        load_hw("h100x")
    with pytest.raises(SpecError, match=r"did you mean 'dgx-a100'"):
        load_hw("dgx-a10")


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_hw(str(tmp_path / "nope.yaml"))


def test_a100_pcie_is_the_same_chip_on_a_300_w_card():
    """A100 80GB PCIe (datasheet PCIe column): same GA100 peaks and energy per operation as the
    SXM4 part, 1935 GB/s and 300 W; under the power limit its large GEMMs settle lower."""
    from simhw.cost.estimate import OpCoster
    from simhw.workload.graph import Op, OpKind, Phase, shape

    sxm, pcie = load_hw("a100"), load_hw("a100-pcie")
    assert pcie.peak_flop_per_s == sxm.peak_flop_per_s and pcie.energy_j_per_flop == sxm.energy_j_per_flop
    assert pcie.main_memory.bandwidth_bytes_per_s == pytest.approx(1935e9) and pcie.tdp_w == 300.0
    m = n = k = 8192
    gemm = Op("gemm", OpKind.GEMM, Phase.FWD, 0, 2.0 * m * n * k, DType.BF16, weight_bytes=2 * k * n,
              input_bytes=2 * m * k, output_bytes=2 * m * n, shape=shape(m=m, n=n, k=k))
    t_sxm, t_pcie = OpCoster(sxm)(gemm).time_s, OpCoster(pcie)(gemm).time_s
    assert 1.05 < t_pcie / t_sxm < 1.2          # ((400 - 60) / (300 - 50))^(1/3) ~ 1.11 in clock


def test_gb200_nvl72_is_one_nvlink_domain_of_72_blackwell_gpus():
    """GB200 NVL72 page: per GPU 5 / 10 / 20 PFLOP/s BF16 / FP8 / FP4 sparse, 186 GB at 8 TB/s, up to
    1,200 W; 72 GPUs whose 1.8 TB/s NVLink 5 ports make the rack's 130 TB/s. A 64-way expert-parallel
    all-to-all stays on NVLink there, where eight DGX B200s send it over their network ports."""
    from simhw.cost.estimate import OpCoster
    from simhw.workload.from_yaml import load_workload
    from simhw.workload.transformer import build_graph
    gpu, rack, b200 = load_hw("gb200"), load_hw("gb200-nvl72"), load_hw("b200")
    assert gpu.peak(DType.BF16) == pytest.approx(5e15 / 2) and gpu.peak(DType.FP4) == pytest.approx(20e15 / 2)
    # 186 GB on the page are GiB, as the B200's 180 GB are (its runtime reports 178.35 GiB of them)
    assert gpu.main_memory.capacity_bytes == pytest.approx(186 * 178.35 / 180 * 2**30, rel=1e-3) and gpu.tdp_w == 1200
    assert gpu.main_memory.capacity_bytes > b200.main_memory.capacity_bytes
    assert gpu.compute_units == b200.compute_units and gpu.efficiency.launch_s == b200.efficiency.launch_s
    assert rack.device_count == 72 and rack.intra_link.bandwidth_bytes_per_s * 2 * 72 == pytest.approx(129.6e12)
    sets = ["devices=64", "parallelism.tp=1", "parallelism.dp=64", "parallelism.ep=64", "global_batch=4096",
            "micro_batch=64"]
    wl = load_workload("workloads/deepseek-v3-decode.yaml", sets)
    a2a = next(op for op in build_graph(wl, compact=True).ops if op.name.startswith("moe_a2a"))
    t = {hw: OpCoster(load_hw(hw), wl).comm_time(a2a) for hw in ("gb200-nvl72", "dgx-b200")}
    assert t["gb200-nvl72"] < t["dgx-b200"] / 4


def test_gb300_extends_the_gb200_with_blackwell_ultra_figures():
    """GB300 (Blackwell Ultra): 288 GB HBM3e, 1.5x the dense FP4 rate, twice the exponential rate,
    almost no FP64 / INT8, 1,400 W; everything else, the rack's NCCL constants included, as the GB200."""
    from simhw.spec.model import DType

    gb300, gb200 = load_hw("gb300"), load_hw("gb200")
    assert gb300.peak(DType.FP4) == pytest.approx(1.5 * gb200.peak(DType.FP4))
    assert gb300.peak(DType.BF16) == gb200.peak(DType.BF16)
    assert gb300.peak(DType.FP64) < 0.05 * gb200.peak(DType.FP64)
    assert gb300.main_memory.capacity_bytes == pytest.approx(288 / 186 * gb200.main_memory.capacity_bytes, rel=1e-3)
    assert gb300.tdp_w == 1400 and gb300.efficiency.attention_exp_per_clock == 2 * gb200.efficiency.attention_exp_per_clock
    assert gb300.efficiency.collective_nvls_fraction == gb200.efficiency.collective_nvls_fraction
    rack = load_hw("gb300-nvl72")
    assert rack.device_count == 72 and rack.network.bandwidth_bytes_per_s == pytest.approx(100e9)
