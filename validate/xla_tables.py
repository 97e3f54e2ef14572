"""Convert OpenXLA's GPU performance tables into simhw measurement CSVs (validate/data/published/).

OpenXLA ships measured tables that its GPU cost model interpolates (Apache-2.0; the numbers are
facts, nothing else is copied):

- ``xla/service/gpu/model/default_matmul_perf_table.txtpb``: achieved FLOP/s of one HLO ``dot``
  ``[b, m, k] x [b, k, n] -> [b, m, n]`` for b in 1, 2, 4 and m, n, k in 256 ... 4096 (powers of two)
  on an H100 (key ``sm_90``), a B200 (``sm_100_B200``) and an MI300X (``gfx942``). Measured by
  ``xla/tools/matmul_perf_table_gen``: XLA compiles the dot (its autotuner picks the kernel), runs it
  once to warm up, then 5 times with small-range and 5 times with large-range random arguments, and
  takes the median CUPTI kernel duration; FLOP/s = 2 b m n k / that time. So a row's time is kernel
  time only (no launch gap), at the clock of a die that runs one short kernel between host-to-device
  argument copies (``power=full``: nothing lets the slow power controller act).

Rows kept: ``bf16xbf16->bf16`` and ``f32xf32->f32``. The latter runs on the tensor cores in TF32 (XLA's
default precision; the H100 rows reach 401 TFLOP/s, above the 67 TFLOP/s FP32 peak), so it is
written as ``tf32``. Left out: the FP8 rows, whose executions run more than one kernel (XLA
transposes the k x n operand for the TN-only FP8 GEMMs of sm_90, and adds scaling): the median of
the mixed kernels is not the dot's time (the H100 rows exceed the 1979 TFLOP/s dense FP8 peak), and
MI300X's run at 3-8 % of its FP8 peak (not on the FP8 matrix cores); ``bf16xbf16->f32`` (MI300X
only).

- ``xla/service/gpu/model/default_collective_perf_table.txtpb``: bytes per second of one HLO
  collective on F32 buffers of 128 B to 2 GiB, in 8-GPU nodes (``sm_90``: H100; ``sm_100_B200``)
  a GB200 NVL72 rack (``sm_100_GB200``: groups of 4 to 72 GPUs of the 72-GPU NVLink domain) and an
  8x MI300X platform (``gfx942``, RCCL), each op over groups of consecutive GPUs (several groups at
  once), and a GB300 NVL72 rack (``sm_103``, as the GB200's). Measured by
  ``xla/tools/collective_perf_table_gen``: the median of 20 runs of the compiled executable, timed
  with GPU events around it (so it holds the NCCL kernel and XLA's launch of it); throughput =
  buffer bytes / that time, the buffer being the full one (all-reduce's, all-gather's output,
  reduce-scatter's input: nccl-tests' convention, as simhw's ``bytes``). Collective-permutes (a
  send to one peer, timed as 100 in a loop) become ``send_recv`` rows.

Usage: ``python validate/xla_tables.py --matmul PATH/default_matmul_perf_table.txtpb --collective
PATH/default_collective_perf_table.txtpb`` (copies of the files at the commit named in
validate/data/published/README.md) writes ``xla-gemm-{h100,b200,mi300x}-{bf16,tf32}.csv`` and
``xla-collective-{dgx-h100,dgx-b200,gb200-nvl72,gb300-nvl72,mi300x-8}.csv``.
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "published"
GPU_OF_KEY = {"sm_90": "h100", "sm_100_B200": "b200", "gfx942": "mi300x"}
DTYPE_OF_KEY = {"bf16xbf16->bf16": "bf16", "f32xf32->f32": "tf32"}
_TOKEN = re.compile(r'key:\s*"(?P<gpu>sm_\w+|gfx\w+)"'
                    r'|entries\s*\{\s*b:\s*(?P<b>\d+)\s*m:\s*(?P<m>\d+)\s*n:\s*(?P<n>\d+)\s*k:\s*(?P<k>\d+)'
                    r'(?P<flops>(?:\s*flops\s*\{\s*key:\s*"[^"]+"\s*value:\s*\d+\s*\})+)')
_FLOPS = re.compile(r'key:\s*"([^"]+)"\s*value:\s*(\d+)')
COLUMNS = ("kind", "m", "n", "k", "batch", "dtype", "measured_s", "timing", "power", "source", "label")
NODE_OF_KEY = {"sm_90": "dgx-h100", "sm_100_B200": "dgx-b200", "sm_100_GB200": "gb200-nvl72", "sm_103": "gb300-nvl72",
               "gfx942": "mi300x-8"}
OP_OF_OPCODE = {"all-reduce": "all_reduce", "all-gather": "all_gather", "reduce-scatter": "reduce_scatter",
                "all-to-all": "all_to_all", "collective-permute": "send_recv"}
ELEMENT_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "S8": 1, "U8": 1, "F64": 8}
COLLECTIVE_COLUMNS = ("kind", "op", "bytes", "ranks", "ranks_per_node", "measured_s", "source", "label")
_SECTION = re.compile(r'^\s*key:\s*"([^"]+)"', re.MULTILINE)
# an entry's instruction up to its throughput; an entry without one (the file has one) is skipped, not
# joined to the next entry's
_ENTRY = re.compile(r'instruction\s*\{(?P<body>(?:(?!instruction\s*\{).)*?)network_throughput_bytes_per_sec:\s*(?P<tput>\d+)',
                    re.DOTALL)


def matmul_rows(text: str) -> dict[str, list[dict]]:
    """Measurement rows per simhw spec name from the text of default_matmul_perf_table.txtpb; the
    first entry wins where a GPU's block repeats a shape (gfx942 lists b=1, m=n=k=256 twice)."""
    out: dict[str, list[dict]] = {}
    seen: set[tuple] = set()
    gpu = None
    for t in _TOKEN.finditer(text):
        if t.group("gpu"):
            gpu = GPU_OF_KEY.get(t.group("gpu"))
            continue
        if gpu is None:
            continue
        b, m, n, k = (int(t.group(x)) for x in "bmnk")
        for key, value in _FLOPS.findall(t.group("flops")):
            dtype = DTYPE_OF_KEY.get(key)
            if dtype is None or (gpu, b, m, n, k, dtype) in seen or int(value) <= 0:
                continue
            seen.add((gpu, b, m, n, k, dtype))
            out.setdefault(gpu, []).append({
                "kind": "gemm", "m": m, "n": n, "k": k, "batch": b, "dtype": dtype,
                "measured_s": f"{2.0 * b * m * n * k / int(value):.6e}", "timing": "kernel", "power": "full",
                "source": "openxla default_matmul_perf_table", "label": f"dot b={b} m={m} n={n} k={k} {dtype}"})
    return out


def collective_rows(text: str) -> dict[str, list[dict]]:
    """Measurement rows per simhw node spec from the text of default_collective_perf_table.txtpb
    (sections of GPUs without a node spec are skipped; a truncated copy yields what it holds)."""
    out: dict[str, list[dict]] = {}
    keys = list(_SECTION.finditer(text))
    for i, key in enumerate(keys):
        node = NODE_OF_KEY.get(key.group(1))
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        if node is None:
            continue
        for e in _ENTRY.finditer(text, key.end(), end):
            body, tput = e.group("body"), int(e.group("tput"))
            opcode = re.search(r'opcode:\s*"([^"]+)"', body).group(1)
            op = OP_OF_OPCODE.get(opcode)
            dims = re.search(r'shape\s*\{\s*element_type:\s*(\w+)\s*dimensions:\s*(\d+)', body)
            group = re.search(r'num_devices_per_group:\s*(\d+)', body)
            if op is None or dims is None or tput <= 0 or (group is None and op != "send_recv"):
                continue
            ranks = 2 if op == "send_recv" else int(group.group(1))
            groups = 1 if op == "send_recv" else int(re.search(r'num_replica_groups:\s*(\d+)', body).group(1))
            size = int(dims.group(2)) * ELEMENT_BYTES[dims.group(1)]
            if op == "reduce_scatter":     # the shape is the output; the buffer is the input
                size *= ranks
            pairs = len(re.findall(r"source_target_pairs", body))
            what = f"{pairs} pairs" if op == "send_recv" else f"{groups} x {ranks} ranks"
            out.setdefault(node, []).append({
                "kind": "collective", "op": op, "bytes": size, "ranks": ranks, "ranks_per_node": "",
                "measured_s": f"{size / tput:.6e}", "source": "openxla default_collective_perf_table",
                "label": f"{opcode} {what} {size} B"})
    return out


def _write(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    print(f"{path}: {len(rows)} rows")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--matmul", type=Path, help="default_matmul_perf_table.txtpb")
    ap.add_argument("--collective", type=Path, help="default_collective_perf_table.txtpb")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    tables = [(p, f) for p, f in ((args.matmul, matmul_rows), (args.collective, collective_rows)) if p]
    if not tables:
        sys.stderr.write("xla_tables: give --matmul and/or --collective.\n")
        return 2
    for path, _ in tables:
        if not path.is_file():
            sys.stderr.write(f"xla_tables: {path} is not a file.\n")
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for path, parse in tables:
        rows = parse(path.read_text(encoding="utf-8"))
        if not rows:
            sys.stderr.write(f"xla_tables: {path} holds no entry of a GPU simhw has a spec for.\n")
            return 2
        for name, rs in rows.items():
            if parse is matmul_rows:
                for dtype in DTYPE_OF_KEY.values():
                    _write(args.out / f"xla-gemm-{name}-{dtype}.csv", COLUMNS, [r for r in rs if r["dtype"] == dtype])
            else:
                _write(args.out / f"xla-collective-{name}.csv", COLLECTIVE_COLUMNS, rs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
