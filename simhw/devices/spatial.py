"""Attention on a FuseMax-style spatial accelerator: a 2D MAC array, a 1D array and a global buffer.

Source: Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention Accelerator
Design" (arXiv 2406.10491, MICRO 2024), seed-targets §6; the Einsum lists and per-Einsum op costs
follow the artifact FPSG-UIUC/micro24-fusemax-artifact (src/accel/flat.py, stable_softmax.py,
proposal.py) [R]. Model, per batch x head, with M = P = ``seq_len`` and E = F = ``head_dim``:

* A *cascade* (§III, Table I) is a list of Einsums; its pass count is the number of traversals of
  the M-sized fiber of scores (3: PyTorch/FLAT; 2: TileFlow, local max plus correction; 1:
  FlashAttention / Rabe & Staats / FuseMax, running max plus rescaling).
* A *binding* places the Einsums on the arrays. FLAT: QK and AV on the 2D array, max, exp, sum and
  the division one op per score on the 1D array (stable_softmax.py). FuseMax: exp as ``exp_macs``
  sequential MACs plus one add on the 2D PEs, max and sum on the 2D array, per-tile running
  statistics (RM, PRM, SPD, SPNV, RD, RNV) on the 1D array, with tiles of ``pe_2d_rows`` keys.
* Division reassociation (§IV): dividing AV by the denominator instead of every score turns
  M·P divisions into F·P, a factor M/F fewer.
* Cycles of an array = its ops (padded to whole array tiles) / its PEs; one op per PE per cycle
  (pipelined exp and divide on the 1D array count one cycle, as stable_softmax.py does).
* DRAM traffic: Q and O once, K and V once per query block held in the buffer; a cascade with
  N > 1 passes must keep the score fiber of every query in flight (``pe_2d_cols`` of them) between
  passes; the part that does not fit the global buffer is written after pass 1 and read back in
  each later pass: ``spill = f · B·H·M·P · word · 2 · (N − 1)``. A 1-pass cascade keeps only
  O(E + F) words per query, independent of M.
* Latency = max(2D cycles, 1D cycles) / clock, DRAM bytes / DRAM bandwidth (the TeAAL combination
  the artifact uses, flat.py ``eval``). Energy = actions x per-action energies of the spec (ERT
  tables, seed-targets §6b) + DRAM bytes x DRAM energy per byte.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from ..errors import SpecError
from ..spec.model import DeviceSpec


class Cascade(Enum):
    """Attention cascades of FuseMax Table I (seed-targets §6f), by pass count over the M fiber."""

    THREE_PASS = 3   # PyTorch, TensorFlow, FLAT, E.T.
    TWO_PASS = 2     # TileFlow, Choi et al.
    ONE_PASS = 1     # FlashAttention(-2), Rabe & Staats, FuseMax

    @property
    def passes(self) -> int:
        return self.value


class Binding(Enum):
    """Where the softmax Einsums run: FLAT (1D array, exp unit) or FuseMax (exp as MACs on 2D)."""

    FLAT = "flat"
    FUSEMAX = "fusemax"


# Per-Einsum iteration spaces.
_SCORE, _TILE, _TILE_F, _OUT_SCORE, _OUT_F = "score", "tile", "tile_f", "out_score", "out_f"


@dataclass(frozen=True)
class Einsum:
    """One Einsum of a cascade: ops per point of its iteration space and the array it runs on."""

    name: str
    on_2d: bool
    space: str                 # score: B·H·M·P; tile: B·H·ceil(M/M0)·P; tile_f: tile x F; out_f: B·H·P·F
    macs: float = 0.0
    adds: float = 0.0
    maxes: float = 0.0
    exps: float = 0.0          # exp-unit operations (FLAT binding only)
    divides: float = 0.0
    cycles: float = 1.0        # PE cycles per point


@dataclass(frozen=True)
class SpatialParams:
    """Constants of the spatial model, from the spec's ``extra:`` (defaults in brackets)."""

    rows_2d: int
    cols_2d: int
    pes_1d: int
    word_bytes: float
    exp_macs: float
    mac_j: float
    add_j: float
    max_j: float
    divide_j: float
    exp_j: float               # FLAT's exp unit per op [UNVERIFIED: exp_macs x MAC energy]
    glb_read_j_per_byte: float
    glb_write_j_per_byte: float
    rf_read_j: float
    rf_write_j: float
    flat_rf_read_j: float
    flat_rf_write_j: float
    glb_bytes: float
    dram_bytes_per_s: float
    dram_j_per_byte: float
    clock_hz: float


def spatial_params(hw: DeviceSpec) -> SpatialParams:
    """Read the model's constants from ``hw`` (hwspecs/fusemax.yaml, seed-targets §6a/6b)."""
    x = hw.extra
    dram = hw.main_memory
    glb = hw.memory_level("glb") or (hw.memory[1] if len(hw.memory) > 1 else None)
    if glb is None or not hw.clock_hz:
        raise SpecError(f"{hw.name}: a spatial array needs a clock and a second memory level (global buffer).")
    rows = int(x.get("pe_2d_rows", math.isqrt(hw.compute_units) or 1))
    cols = int(x.get("pe_2d_cols", max(1, hw.compute_units // rows)))
    word = float(x.get("word_bits", 16.0)) / 8.0
    row_bytes = float(x.get("glb_row_bits", 4096.0)) / 8.0
    mac = float(x.get("mac_energy", 0.0))
    exp_macs = float(x.get("exp_macs", 6.0))
    glb_rd = float(x.get("glb_read_energy", 0.0)) / row_bytes if "glb_read_energy" in x else glb.energy_j_per_byte
    glb_wr = float(x.get("glb_write_energy", 0.0)) / row_bytes if "glb_write_energy" in x else glb.energy_j_per_byte
    rf_rd = float(x.get("pe_rf_read_energy", 0.0))
    rf_wr = float(x.get("pe_rf_write_energy", 0.0))
    return SpatialParams(
        rows_2d=rows, cols_2d=cols, pes_1d=int(x.get("pe_1d", cols)), word_bytes=word, exp_macs=exp_macs,
        mac_j=mac, add_j=float(x.get("add_energy", 0.0)), max_j=float(x.get("max_energy", 0.0)),
        divide_j=float(x.get("divide_energy", 0.0)),
        exp_j=float(x.get("exp_energy", exp_macs * mac)),   # UNVERIFIED default: FLAT's ERT exp entry is not in the spec
        glb_read_j_per_byte=glb_rd, glb_write_j_per_byte=glb_wr, rf_read_j=rf_rd, rf_write_j=rf_wr,
        flat_rf_read_j=float(x.get("flat_pe_rf_read_energy", rf_rd)),
        flat_rf_write_j=float(x.get("flat_pe_rf_write_energy", rf_wr)),
        glb_bytes=glb.capacity_bytes, dram_bytes_per_s=dram.bandwidth_bytes_per_s,
        dram_j_per_byte=dram.energy_j_per_byte or float(x.get("dram_access_energy", 0.0)) / 8.0,
        clock_hz=hw.clock_hz)


def einsums(cascade: Cascade, binding: Binding, head_dim: int, exp_macs: float = 6.0,
            reassociate_division: bool | None = None) -> tuple[Einsum, ...]:
    """The Einsums of ``cascade`` under ``binding`` with their per-point op costs.

    FLAT binding: stable_softmax.py M/SN/SD/A on the 1D array, one cycle each per score [R].
    FuseMax binding: proposal.py ``compute_cost`` [R] (QK, LM, SLN = 6 MAC + 1 add, SLD, SLNV on 2D;
    RM, PRM = 6 MAC + 1 add, SPD, SPNV, RD, RNV, AV = divide on 1D). The 2-pass cascade is given the
    1-pass arithmetic (a per-tile correction of the same size); it differs only in its passes.
    """
    e = f = float(head_dim)
    if reassociate_division is None:
        reassociate_division = cascade.passes < 3
    on2d = binding is Binding.FUSEMAX
    ex = (Einsum("SN", on2d, _SCORE, macs=exp_macs, adds=1, cycles=exp_macs + 1) if on2d
          else Einsum("SN", False, _SCORE, exps=1, adds=1, cycles=1))
    out = [Einsum("QK", True, _SCORE, macs=e, cycles=e),
           Einsum("LM" if cascade.passes < 3 else "M", on2d, _SCORE, maxes=1, cycles=1),
           ex,
           Einsum("SD", on2d, _SCORE, adds=1, cycles=1),
           Einsum("SNV", True, _SCORE, macs=f, cycles=f)]
    if cascade.passes < 3:   # running (or per-tile corrected) statistics, one set per key tile
        out += [Einsum("RM", False, _TILE, maxes=1, cycles=1),
                Einsum("PRM", False, _TILE, macs=exp_macs, adds=1, cycles=exp_macs + 1),
                Einsum("SPD", False, _TILE, macs=1, cycles=1),
                Einsum("SPNV", False, _TILE_F, macs=1, cycles=1),
                Einsum("RD", False, _TILE, adds=1, cycles=1),
                Einsum("RNV", False, _TILE_F, adds=1, cycles=1)]
    out.append(Einsum("AV", False, _OUT_F if reassociate_division else _OUT_SCORE, divides=1, cycles=1))
    return tuple(out)


@dataclass(frozen=True)
class SpatialCost:
    """Cost of one attention layer (all heads, whole batch) on a spatial array."""

    time_s: float
    energy_j: float
    dram_bytes: float
    macs: float                # MACs on both arrays (exp counted as exp_macs MACs where bound to PEs)
    passes: int
    utilisation_2d: float      # useful 2D PE-cycles / (PEs x latency cycles)
    utilisation_1d: float
    macs_2d: float = 0.0
    divisions: float = 0.0
    compute_2d_s: float = 0.0
    compute_1d_s: float = 0.0
    dram_s: float = 0.0
    spill_bytes: float = 0.0
    glb_bytes: float = 0.0     # bytes read + written in the global buffer
    mac_2d_energy_j: float = 0.0
    other_compute_energy_j: float = 0.0
    rf_energy_j: float = 0.0
    glb_energy_j: float = 0.0
    dram_energy_j: float = 0.0

    @property
    def mac_2d_energy_fraction(self) -> float:
        return self.mac_2d_energy_j / self.energy_j if self.energy_j else 0.0


def attention_cost(hw: DeviceSpec, batch: int, heads: int, seq_len: int, head_dim: int,
                   cascade: Cascade, binding: Binding | None = None,
                   reassociate_division: bool | None = None) -> SpatialCost:
    """Time, energy and DRAM traffic of self-attention (M = P = seq_len, E = F = head_dim).

    ``binding`` defaults to the design Table I pairs with the cascade: FLAT for 3 passes, FuseMax
    otherwise. ``reassociate_division`` defaults to True for 1 and 2 passes (FuseMax §IV).
    """
    if min(batch, heads, seq_len, head_dim) <= 0:
        raise ValueError("batch, heads, seq_len and head_dim must be positive")
    if binding is None:
        binding = Binding.FLAT if cascade is Cascade.THREE_PASS else Binding.FUSEMAX
    p = spatial_params(hw)
    bh, m, q, e = float(batch * heads), float(seq_len), float(seq_len), float(head_dim)
    f = e
    tiles = math.ceil(m / p.rows_2d)
    padded_m, padded_q = tiles * p.rows_2d, math.ceil(q / p.cols_2d) * p.cols_2d
    padded_lanes = math.ceil(q / p.pes_1d) * p.pes_1d
    points = {_SCORE: (bh * m * q, bh * padded_m * padded_q), _TILE: (bh * tiles * q, bh * tiles * padded_lanes),
              _TILE_F: (bh * tiles * q * f, bh * tiles * padded_lanes * f),
              _OUT_SCORE: (bh * m * q, bh * m * padded_lanes), _OUT_F: (bh * q * f, bh * padded_lanes * f)}
    ops = einsums(cascade, binding, head_dim, p.exp_macs, reassociate_division)
    cyc2d = cyc1d = useful2d = useful1d = 0.0
    macs = macs2d = adds = maxes = exps = divs = 0.0
    for op in ops:
        n, n_padded = points[op.space]
        if op.on_2d:
            cyc2d += n_padded * op.cycles / (p.rows_2d * p.cols_2d)
            useful2d += n * op.cycles
            macs2d += n * op.macs
        else:
            cyc1d += n_padded * op.cycles / p.pes_1d
            useful1d += n * op.cycles
        macs += n * op.macs
        adds += n * op.adds
        maxes += n * op.maxes
        exps += n * op.exps
        divs += n * op.divides

    # DRAM and global-buffer traffic (bytes).
    w = p.word_bytes
    kv_tile = p.rows_2d * (e + f) * w                       # one K and one V tile on chip (proposal.py)
    per_query = (e + f + 2) * w                             # Q, RNV, RM, RD of a query in flight
    avail = max(0.0, p.glb_bytes - kv_tile)
    fiber_fraction_spilled = 0.0
    if cascade.passes > 1:
        fiber = p.cols_2d * m * w                           # scores of the queries in flight
        room = max(0.0, avail - p.cols_2d * per_query)
        fiber_fraction_spilled = 1.0 - min(1.0, room / fiber)
        q_block = p.cols_2d
    else:
        q_block = max(p.cols_2d, int(avail // per_query) // p.cols_2d * p.cols_2d)
    kv_reads = math.ceil(q / q_block)
    compulsory = bh * w * (q * e + q * f + kv_reads * m * (e + f))
    scores = bh * m * q * w
    spill = fiber_fraction_spilled * scores * 2.0 * (cascade.passes - 1)
    dram_bytes = compulsory + spill
    glb_read = (bh * math.ceil(q / p.cols_2d) * m * (e + f) * w      # K, V tiles into the array
                + bh * tiles * q * e * w                            # Q per key tile
                + compulsory                                        # DRAM fills read out again
                + (1.0 - fiber_fraction_spilled) * scores * (cascade.passes - 1))
    glb_write = compulsory + (1.0 - fiber_fraction_spilled) * scores * (cascade.passes - 1)
    if cascade.passes == 1:   # running numerator RNV: read and written back once per key tile
        glb_read += bh * tiles * q * f * w
        glb_write += bh * tiles * q * f * w
    # PE register file: each 2D Einsum on scores reads its input score and writes its output once.
    score_ops_2d = sum(1 for op in ops if op.on_2d and op.space == _SCORE)
    rf_rd_j, rf_wr_j = ((p.rf_read_j, p.rf_write_j) if binding is Binding.FUSEMAX
                        else (p.flat_rf_read_j, p.flat_rf_write_j))
    rf_energy = bh * m * q * score_ops_2d * (rf_rd_j + rf_wr_j)

    mac_2d_energy = macs2d * p.mac_j
    other = (macs - macs2d) * p.mac_j + adds * p.add_j + maxes * p.max_j + exps * p.exp_j + divs * p.divide_j
    glb_energy = glb_read * p.glb_read_j_per_byte + glb_write * p.glb_write_j_per_byte
    dram_energy = dram_bytes * p.dram_j_per_byte
    energy = mac_2d_energy + other + rf_energy + glb_energy + dram_energy

    t2d, t1d = cyc2d / p.clock_hz, cyc1d / p.clock_hz
    tdram = dram_bytes / p.dram_bytes_per_s
    time_s = max(t2d, t1d, tdram)
    cycles = time_s * p.clock_hz
    return SpatialCost(
        time_s=time_s, energy_j=energy, dram_bytes=dram_bytes, macs=macs, passes=cascade.passes,
        utilisation_2d=useful2d / (p.rows_2d * p.cols_2d * cycles),
        utilisation_1d=useful1d / (p.pes_1d * cycles), macs_2d=macs2d, divisions=divs,
        compute_2d_s=t2d, compute_1d_s=t1d, dram_s=tdram, spill_bytes=spill, glb_bytes=glb_read + glb_write,
        mac_2d_energy_j=mac_2d_energy, other_compute_energy_j=other, rf_energy_j=rf_energy,
        glb_energy_j=glb_energy, dram_energy_j=dram_energy)
