"""Frozen values describing hardware, all in SI units (bytes, seconds, FLOP, joules, watts, USD).

A :class:`DeviceSpec` is one chip or drive (GPU, CPU, NVMe SSD, flash, memristor crossbar,
spatial array); a :class:`NodeSpec` is a system of devices joined by links with host memory.
Specs are data: every value comes from ``hwspecs/*.yaml`` where it carries its unit and source.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Mapping

from ..errors import MissingMemoryError, MissingPeakError


class AttentionKernel(Enum):
    """The FlashAttention generation a device's software stack runs (cost/attention.py)."""
    FA2 = "fa2"   # Dao 2023: grid (q-block, batch, head) dispatched in launch order; the varlen GQA swap
                  # copies q and O; a paged KV cache runs the split-KV kernel and its tiles
    FA3 = "fa3"   # Shah et al. 2024: persistent CTAs, longest causal tiles first; packs GQA itself


class DType(Enum):
    """Numeric formats, with their size in bytes."""

    FP64 = "fp64"
    FP32 = "fp32"
    TF32 = "tf32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    FP4 = "fp4"
    INT4 = "int4"

    @property
    def bytes(self) -> float:
        return _DTYPE_BYTES[self]

    @classmethod
    def parse(cls, text: str) -> "DType":
        key = str(text).strip().lower()
        key = _DTYPE_ALIASES.get(key, key)
        return cls(key)


_DTYPE_BYTES = {DType.FP64: 8, DType.FP32: 4, DType.TF32: 4, DType.BF16: 2, DType.FP16: 2,
                DType.FP8: 1, DType.INT8: 1, DType.FP4: 0.5, DType.INT4: 0.5}
_DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
                  "bfloat16": "bf16", "float64": "fp64", "double": "fp64", "float8": "fp8",
                  "e4m3": "fp8", "e5m2": "fp8"}


class DeviceKind(Enum):
    GPU = "gpu"
    CPU = "cpu"
    NVME = "nvme"
    FLASH = "flash"
    CROSSBAR = "crossbar"
    SPATIAL = "spatial"


class LinkKind(Enum):
    NVLINK = "nvlink"
    PCIE = "pcie"
    NETWORK = "network"
    C2C = "c2c"
    INFINITY_FABRIC = "infinity_fabric"


class LinkTopology(Enum):
    """How a link's devices reach each other: through a switch (any group gets the full per-device
    bandwidth) or a full mesh of point-to-point links (a group gets only the links to its peers)."""

    SWITCH = "switch"
    MESH = "mesh"


@dataclass(frozen=True)
class MemoryLevel:
    """One level of a device's memory hierarchy (HBM, L2, DRAM, flash)."""

    name: str
    capacity_bytes: float
    bandwidth_bytes_per_s: float
    energy_j_per_byte: float = 0.0
    latency_s: float = 0.0


@dataclass(frozen=True)
class LinkSpec:
    """A link a device or node has. Bandwidth is per direction."""

    name: str
    kind: LinkKind
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    energy_j_per_byte: float = 0.0
    topology: LinkTopology = LinkTopology.SWITCH
    peers: int = 0                          # mesh: the devices each one has a direct link to

    def for_group(self, ranks: int) -> "LinkSpec":
        """The link as a group of ``ranks`` devices uses it: all of it through a switch; in a mesh,
        the direct links to the group's other ranks, each 1 / peers of the bandwidth (AMD's 8-GPU
        Infinity Fabric platform: 2 GPUs share one of the 7 links; RCCL's rings use every link
        among the group's GPUs)."""
        if self.topology is not LinkTopology.MESH or self.peers <= 0 or ranks - 1 >= self.peers:
            return self
        return replace(self, bandwidth_bytes_per_s=self.bandwidth_bytes_per_s * max(ranks - 1, 1) / self.peers)


@dataclass(frozen=True)
class Efficiency:
    """Every constant of the efficiency model, read from the spec's ``efficiency:`` block.

    Defaults describe a well-tuned GPU library; each spec overrides what its chip's public facts
    say (tile shapes of the GEMM library, achievable fraction of HBM bandwidth, launch latency).
    Fractions are dimensionless; times in seconds.
    """

    compute_fraction: float = 0.85          # best achievable fraction of dense tensor peak on big GEMMs
    memory_fraction: float = 0.85           # best achievable fraction of HBM bandwidth (streaming)
    launch_s: float = 4e-6                  # fixed kernel cost (launch + prologue/epilogue)
    gemm_tile_m: int = 128                  # output tile of the GEMM library (CUTLASS/cuBLAS)
    gemm_tile_n: int = 128
    gemm_tile_k: int = 32
    gemm_tiles_per_sm: int = 1              # concurrent CTAs of the main tile per SM
    threads_per_sm: int = 2048              # resident threads per SM (CUDA guide, compute capability table)
    gemm_min_tile_m: int = 64               # smallest tile the library falls back to for small m
    l2_reuse: float = 1.0                   # 1 = operands re-read from HBM once per wave (no L2 reuse)
    attention_compute_fraction: float = 0.7 # FlashAttention prefill, of dense tensor peak
    attention_memory_fraction: float = 0.8  # split-KV decode, of HBM bandwidth
    elementwise_memory_fraction: float = 0.8
    bandwidth_ramp_bytes: float = 2e6       # bytes at which a memory-bound kernel reaches half its bandwidth
    collective_latency_s: float = 10e-6     # base cost of one collective (launch + setup; cost/comm.py adds per-step hops)
    collective_bus_fraction: float = 0.8    # achievable fraction of link bandwidth
    collective_p2p_fraction: float = 0.0    # send/recv: fraction of the link one direct copy reaches (no ring
                                            # steps or reductions); 0 = collective_bus_fraction
    collective_ramp_bytes: float = 4e6      # Simple protocol: message size at half the bus bandwidth (channel pipeline fill)
    collective_hop_latency_s: float = 1e-6  # per ring/tree step with the LL protocol (NCCL tuning.cc hwLat NVLink ~0.6 us)
    collective_ll_fraction: float = 0.5     # LL: 8-byte stores carry 4 bytes of data and a 4-byte flag
    collective_ll128_fraction: float = 0.9375  # LL128: 120 data bytes per 128-byte line
    collective_ll128_latency_factor: float = 2.0   # step latency of LL128 / LL (NCCL tuning.cc)
    collective_simple_latency_factor: float = 6.0  # step latency of Simple / LL (NCCL tuning.cc)
    collective_nvls_fraction: float = 0.0   # NVLink SHARP all-reduce: algorithm bandwidth / NVLink bandwidth
                                            # (0: the switch cannot reduce, e.g. NVSwitch gen 2 on A100)
    collective_peer_latency_s: float = 0.0  # all-to-all inside the NVLink domain: per peer (its sends are posted at
                                            # once); 0 = collective_hop_latency_s (cost/comm.py)
    collective_local_copy: float = 0.0      # inside a node, the rank's own chunk copied by the NCCL channels, in
                                            # ring steps of bytes / n at the bus bandwidth (cost/comm.py)
    custom_ar_barrier_s: float = 0.0        # serving engines' own NVLink all-reduce (vLLM custom_all_reduce): one
                                            # exposed cross-GPU flag barrier; 0 = no such kernel, NCCL prices it
    custom_ar_fraction: float = 0.0         # its peer-to-peer loads' share of the NVLink bandwidth (cost/comm.py)
    custom_ar_max_bytes: float = 8 * 2**20  # messages from this size on go to NCCL (vLLM's max_size, 8 MiB)
    host_copy_fraction: float = 0.8         # achievable fraction of the host link for pinned cudaMemcpyAsync
    host_pageable_fraction: float = 0.33    # pageable (unpinned) host memory: the driver stages it through a pinned
                                            # buffer, at this fraction of the pinned rate (0.23-0.42 measured)
    pageable_copy_fraction: float = 0.5     # pageable vs pinned copy rate (staged through a pinned bounce buffer; UNVERIFIED)
    engine_step_overhead_s: float = 0.0     # serving engine: scheduler + sampling per iteration
    engine_per_token_s: float = 0.0         # serving engine: per-sequence bookkeeping per iteration
    engine_host_per_layer_s: float = 0.0    # serving engine: host (Python) dispatch per layer; the GPU waits
                                            # on it when its own work per layer is shorter (eager engines)
    engine_per_worker_s: float = 0.0        # serving engine: per iteration and extra worker process (TP x PP - 1)
    host_launch_gap_s: float = 0.0          # CPU-side gap between kernels not hidden (eager mode)
    host_compiled_call_gap_s: float = 0.0   # host time around one call of a torch.compile'd function (guard
                                            # checks, the compiled wrapper, launch, synchronize); 0: unknown
    # --- GEMM tiling (cost/roofline.py: gemm_time_s). The library's tiles are every power-of-two
    # tile_m x tile_n with edges from the minimum to gemm_max_tile_edge and at most
    # gemm_max_tile_elems outputs; split-K up to gemm_max_split_k. 0 = derive from the main tile.
    gemm_min_tile_n: int = 64               # narrowest tile the library has in n
    gemm_max_tile_edge: int = 0             # 0: 2 x max(gemm_tile_m, gemm_tile_n)
    gemm_max_tile_elems: int = 0            # 0: 2 x gemm_tile_m x gemm_tile_n
    gemm_max_split_k: int = 64              # largest split-K factor (partial sums in FP32 workspace)
    gemm_split_k_kernel: bool = False       # split-K partials are reduced by a kernel of its own (one more launch;
                                            # cuBLASLt's splitKreduce_kernel on Hopper), not inside the GEMM
    gemm_pipeline_stages: int = 4           # k-tiles a CTA keeps in flight (cp.async / TMA stages)
    gemm_cluster: int = 1                   # CTAs of a thread-block cluster sharing one operand's tiles
                                            # through TMA multicast (Hopper and later): L2 reads it once
    gemm_epilogue_overlap: bool = False     # output stores overlap the next tile's main loop (warp-specialized
                                            # persistent kernels: CUTLASS/cuBLAS sm90 ping-pong and later)
    gemm_pingpong_max_tile_elems: int = 0   # with gemm_epilogue_overlap: the largest tile (outputs) a ping-pong
                                            # kernel runs, one consumer warp group per tile; larger tiles are
                                            # cooperative (both on one tile), storing it after its main loop
                                            # (0: every tile overlaps)
    gemm_stream_k: bool = False             # the library also has stream-K kernels: each SM takes an equal
                                            # share of all tiles' k-iterations, partial tiles fixed up through L2
    fp8_any_layout: bool = False            # FP8 GEMMs with per-tensor scales take either operand layout (sm100:
                                            # Transformer Engine's is_non_tn_fp8_gemm_supported), so an FP8 cast
                                            # needs no transposed copy; sm89 / sm90 take TN only
    gemm_overlap: float = 5.0               # p of the p-norm joining a CTA's on-chip (tensor, L2) and HBM times (> 50: max)
    gemm_cta_overhead_s: float = 1e-6       # per wave of CTAs: prologue, epilogue and drain (beyond one memory latency)
    gemm_prologue_s: float = 0.0            # once per GEMM kernel beyond the launch: setup before the first wave
                                            # streams (Hopper: TMA descriptors, barriers, cluster launch)
    gemm_light_tile: int = 0                # the library's small single-stage kernel (cost/ctas.py light_gemm):
    gemm_light_tile_k: int = 32             # square tile edge (0: none), k-tile, time per k-tile, and when
    gemm_light_k_step_s: float = 0.0        # it runs: m <= gemm_light_max_m, or problems of at least
    gemm_light_max_m: int = 16              # gemm_light_min_macs multiply-adds
    gemm_light_min_macs: float = 0.0
    sm_l2_bytes_per_cycle: float = 64.0     # most L2 bytes one SM can take per clock (when few SMs are busy)
    # --- FlashAttention (cost/attention.py: attention_time_s). FlashAttention-2 forward tiles:
    # each CTA owns attention_tile_q query rows of one head and walks the keys in blocks of
    # attention_tile_kv; decode (one query per sequence) packs a GQA group into one CTA and splits
    # the keys over CTAs (flash-decoding) in blocks of attention_split_tile_kv.
    attention_tile_q: int = 128
    attention_tile_kv: int = 64
    attention_split_tile_kv: int = 128
    attention_split_tile_q: int = 64        # query rows per CTA of the split-KV kernel (FA2 flash_fwd_splitkv kBlockM)
    attention_ctas_per_sm: int = 2          # co-resident CTAs per SM (shared memory allows two)
    attention_exp_per_clock: float = 16.0   # exponentials per clock per SM (special-function units)
    issue_lanes_per_clock: float = 128.0    # threads' instructions one SM issues per clock: four partitions of one
                                            # 32-thread warp instruction each (P: NVIDIA Ampere, Hopper, Blackwell)
    attention_exp_reference_per_clock: float = 16.0  # the exponential rate of the chip attention_compute_fraction
                                            # was measured on (NVIDIA's sm80-sm100 SMs: 16); where
                                            # attention_exp_per_clock differs, cost/attention.py scales the
                                            # softmax's share of the kernel time; 0: this chip's own rate
    sm_shared_bytes_per_cycle: float = 0.0  # shared-memory bytes one SM reads per clock; FlashAttention-2's
                                            # warps each read the K/V tiles from it (roofline); 0: not modelled
    attention_warps: int = 4                # warps of a FlashAttention-2 forward CTA (split over its query rows)
    attention_max_splits: int = 128         # FlashAttention-2's cap (vLLM lowers it to 16 inside CUDA graphs)
    attention_cta_overhead_s: float = 2e-6  # per CTA: dependent loads of Q, page table, first K/V block; O write
    attention_block_latency_s: float = 1e-6 # decode: per key block on top of its transfer (dependent K then V loads,
                                            # two DRAM round trips; nothing to hide them behind)
    attention_first_block_latency_s: float = 4e-6  # split-KV decode: once per CTA, the dependent chain before the K/V
                                            # stream (block table -> first K -> QK^T/softmax -> first V; FP32 partials)
    attention_overlap: float = 3.0          # p of the p-norm joining the CTA schedule and the HBM time (inf: perfect overlap)
    scan_step_latency_s: float = 0.0        # chunked delta-rule scan: one chunk's step of a CTA's sequential state
                                            # recurrence (W·S, then S += K^T·(U - W·S), dependent MMAs); 0: not modelled
    scan_value_block: int = 64              # value columns of the K x V state one CTA of that recurrence carries
    gemm_l2_ratio: float = 1.0              # a GEMM's operand stream from the L2 over the l2 level's bandwidth figure
                                            # (a load-instruction microbenchmark on Hopper; TMA bulk loads draw more)
    attention_backward_fraction: float = 0.70  # the backward kernel's tensor rate over the forward's (dQ atomics, five
                                            # MMAs per tile under more register pressure; FLOPs are 2.5x the forward's):
                                            # measured 0.70 on H100 / H200 (hwspecs/h100.yaml), carried to other GPUs
    attention_overhead_s: float = 0.0       # per attention op beyond one launch (e.g. KV-cache write kernel of a serving engine)
    attention_kv_write_instructions: float = 0.0  # a serving engine's KV-cache write kernel: instructions each of
                                            # its threads issues (one block per token of min(kv_heads x head_dim,
                                            # 512) threads; cost/attention.py); 0 = priced by its bytes only
    attention_kernel: AttentionKernel = AttentionKernel.FA2  # FlashAttention generation (see AttentionKernel)
    l2_resident_fraction: float = 0.0       # share of the L2's capacity an operand re-read by a loop can stay in
                                            # (cost/roofline.py l2_hits; 0: residency not modelled)
    l2_fraction: float = 0.8                # achievable fraction of L2 bandwidth (spec memory 'l2') feeding SMs
    write_fraction: float = 0.85            # achievable fraction of HBM bandwidth for write streams
    # --- row-wise kernels (cost/rowwise.py: PyTorch softmax and norms): occupancy and load latency
    registers_per_sm: int = 65536           # 32-bit registers per SM (CUDA guide, compute capability 5.0 and later)
    max_blocks_per_sm: int = 32             # resident blocks per SM (CUDA guide: 32 for 8.0 and 9.0, 16 for 7.5 and 8.6)
    l2_latency_fraction: float = 0.41       # an L2 hit's latency / main memory's (H100 pointer chase: 144 / 351 ns)
    extra: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class DeviceSpec:
    """One device. Missing sections are ``None`` (an SSD has no ``peak_flop_per_s``)."""

    name: str
    kind: DeviceKind
    description: str
    source: str
    version: int
    aliases: tuple[str, ...] = ()
    peak_flop_per_s: Mapping[DType, float] = field(default_factory=lambda: MappingProxyType({}))
    sparsity_factor: float = 1.0
    compute_units: int = 0                  # SMs / CUs / cores / PEs
    clock_hz: float = 0.0
    memory: tuple[MemoryLevel, ...] = ()    # [0] is the main memory (HBM/DRAM); then caches
    links: tuple[LinkSpec, ...] = ()
    tdp_w: float = 0.0
    idle_w: float = 0.0
    active_w: float = 0.0                   # draw above idle while a workload runs (clocks at the operating point)
    energy_j_per_flop: Mapping[DType, float] = field(default_factory=lambda: MappingProxyType({}))
    transport_j_per_byte: float = 0.0       # on-chip energy per main-memory byte (L2, crossbar, shared memory)
    hot_flop_factor: float = 1.0            # energy per FLOP at sustained die temperature / near idle (cost/power.py)
    hot_time_constant_s: float = 0.0        # how fast a die held at its limit warms (cost/power.py: held_s); 0: unknown
    price_usd: float = 0.0
    cloud_usd_per_s: float = 0.0
    lifespan_s: float = 0.0
    die_area_m2: float = 0.0
    process_nm: float = 0.0
    embodied_kgco2e: float = 0.0
    mass_kg: float = 0.0
    efficiency: Efficiency = Efficiency()
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    path: str = ""

    # Convenience views -------------------------------------------------------------------
    @property
    def main_memory(self) -> MemoryLevel:
        if not self.memory:
            raise MissingMemoryError(f"{self.name} ({self.kind.value}) has no memory levels, so its ops have no main "
                                     "memory to move bytes through: cost a workload on a GPU, CPU or accelerator spec.")
        return self.memory[0]

    def memory_level(self, name: str) -> MemoryLevel | None:
        for level in self.memory:
            if level.name == name:
                return level
        return None

    @property
    def l2_resident_bytes(self) -> float:
        """Bytes a re-read operand can stay in: the L2 capacity times ``l2_resident_fraction``
        (0 without an L2 level; cost/roofline.py l2_hits, fresh_l2_bytes; cost/rowwise.py)."""
        l2 = self.memory_level("l2")
        return l2.capacity_bytes * self.efficiency.l2_resident_fraction if l2 is not None else 0.0

    def link(self, kind: LinkKind) -> LinkSpec | None:
        for link in self.links:
            if link.kind is kind:
                return link
        return None

    def peak(self, dtype: DType) -> float:
        """Dense peak FLOP/s for ``dtype``; falls back to the nearest wider format the chip has."""
        for candidate in _FALLBACK[dtype]:
            if candidate in self.peak_flop_per_s:
                return self.peak_flop_per_s[candidate]
        have = ", ".join(d.value for d in self.peak_flop_per_s)
        raise MissingPeakError(
            f"{self.name} ({self.kind.value}) has no {dtype.value} compute peak (nor a wider format)"
            + (f"; its spec lists {have}, so ops in {dtype.value} cannot be priced on it." if have else
               "; it computes nothing: cost a workload on a GPU, CPU or accelerator spec."))

    @property
    def busy_w(self) -> float:
        """Static draw (W) of a device running a workload: idle + active. Charged over the whole step,
        host-side gaps included (milliseconds are too short for the driver to drop the clocks)."""
        return self.idle_w + self.active_w

    @property
    def memory_byte_energy_j(self) -> float:
        """Energy (J) of one main-memory byte delivered to the compute units: the memory device's
        access energy plus the on-chip transport (L2, crossbar, shared memory)."""
        return (self.memory[0].energy_j_per_byte if self.memory else 0.0) + self.transport_j_per_byte

    def flop_energy(self, dtype: DType) -> float:
        for candidate in _FALLBACK[dtype]:
            if candidate in self.energy_j_per_flop:
                return self.energy_j_per_flop[candidate]
        return 0.0


_FALLBACK = {
    DType.FP64: (DType.FP64, DType.FP32),
    DType.FP32: (DType.FP32, DType.TF32),
    DType.TF32: (DType.TF32, DType.FP32),
    DType.BF16: (DType.BF16, DType.FP16, DType.TF32, DType.FP32),
    DType.FP16: (DType.FP16, DType.BF16, DType.TF32, DType.FP32),
    DType.FP8: (DType.FP8, DType.INT8, DType.FP16, DType.BF16, DType.FP32),
    DType.INT8: (DType.INT8, DType.FP8, DType.FP16, DType.BF16, DType.FP32),
    DType.FP4: (DType.FP4, DType.INT4, DType.FP8, DType.INT8, DType.FP16, DType.BF16, DType.FP32),
    DType.INT4: (DType.INT4, DType.FP4, DType.INT8, DType.FP8, DType.FP16, DType.BF16, DType.FP32),
}


@dataclass(frozen=True)
class NodeSpec:
    """A system: ``device_count`` copies of ``device`` plus host CPU, host memory, drives, links."""

    name: str
    description: str
    source: str
    version: int
    device: DeviceSpec
    device_count: int
    aliases: tuple[str, ...] = ()
    intra_link: LinkSpec | None = None      # device-to-device (NVLink/NVSwitch), per direction per device
    host_link: LinkSpec | None = None       # device-to-host (PCIe), per direction per device
    network: LinkSpec | None = None         # node-to-node, per direction per NIC
    network_nics: float = 0.0               # NICs of that bandwidth per node (0: one per device, as a DGX)
    host_memory_bytes: float = 0.0
    host_memory_bandwidth_bytes_per_s: float = 0.0
    host_cpu: DeviceSpec | None = None
    drives: tuple[DeviceSpec, ...] = ()
    drive_count: int = 0
    host_power_w: float = 0.0               # node power beyond the devices (CPUs, fans, NICs)
    price_usd: float = 0.0
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    path: str = ""

    @property
    def nics(self) -> float:
        """NICs per node, each with the network link's bandwidth (one per device unless the spec
        says otherwise; fractional when fitted by simhw calibrate: the node's capacity in NICs)."""
        return self.network_nics or float(self.device_count)

    def nic_share(self, active: float) -> float:
        """The share of one NIC each of ``active`` devices of a node gets when they all send across
        nodes at once (1 while there are NICs enough)."""
        return min(1.0, self.nics / max(active, 1.0))
