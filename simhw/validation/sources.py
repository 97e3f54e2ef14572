"""Converters from public GPU measurement sets into simhw's measurement CSV (see schema.py).

Each function reads one source's files as published (names and column meanings from the source's
README in ``../shared/validation/<source>/`` and ``validate/datasets.yaml``) and returns a pandas
DataFrame with the columns of :data:`simhw.validation.schema.COLUMNS`; times become seconds.
The data files are never copied into simhw: users fetch them from the repositories named in
``validate/datasets.yaml`` and convert them with ``validate/convert.py``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import DataError
from .schema import COLUMNS

SOURCES = ("aiconfigurator", "vidur", "llmcompass")


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows, columns=list(COLUMNS))


def _csv(path: Path, **kw):
    import pandas as pd

    try:
        return pd.read_csv(path, **kw)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {str(exc).splitlines()[0]}).") from None


# Folder names that say which GPU measured the files below them: a100/, h100/ (../shared layout),
# h100_sxm/ (aiconfigurator), a100_dgx/ (vidur network), ...
_GPU_DIR = re.compile(r"^(a100|a800|h100|h200|h800|b200|gb200|l40s|l4|a10|mi300x)(?:[_-].*)?$", re.IGNORECASE)


def gpus_under(root: str | Path) -> list[str]:
    """The GPUs named by folders under ``root`` (lower case, sorted): ``['a100', 'h100']``."""
    found = set()
    for path in Path(root).rglob("*"):
        if path.is_dir() and (m := _GPU_DIR.match(path.name)):
            found.add(m.group(1).lower())
    return sorted(found)


def _find(root: Path, pattern: str, gpu: str | None = None) -> list[Path]:
    """Files matching ``pattern`` under ``root``; with ``gpu``, only those in a folder of that GPU
    (``root`` itself or one below it)."""
    files = sorted(p for p in Path(root).rglob(pattern) if p.is_file())
    if gpu is None:
        return files
    return [p for p in files if _names_gpu(Path(root).resolve().parts + p.relative_to(root).parts[:-1], gpu)]


def _names_gpu(parts: tuple[str, ...], gpu: str) -> bool:
    return any((m := _GPU_DIR.match(part)) is not None and m.group(1).lower() == gpu.lower() for part in parts)


def _need(root: Path, files: list[Path], what: str) -> None:
    if not files:
        raise DataError(f"{root}: no {what} found; expected the layout described in validate/datasets.yaml.")


# --------------------------------------------------------------------------------------------
# ai-dynamo/aiconfigurator: kernel latencies inside CUDA graphs, mean, ms
# --------------------------------------------------------------------------------------------
_AIC_OPS = {"all_gather": "all_gather", "all_reduce": "all_reduce", "alltoall": "all_to_all",
            "all_to_all": "all_to_all", "reduce_scatter": "reduce_scatter"}
_NCCL_BYTES = {"half": 2, "float16": 2, "bfloat16": 2, "bf16": 2, "int8": 1, "float": 4, "float32": 4}


_AIC_GEMM_LAYERS = 6    # collect_gemm.py: outside_loop_count layers per timed bf16 graph


_AIC_GEMM_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8"}


def convert_aiconfigurator(root: str | Path, *, custom_allreduce: bool = True, gpu: str | None = None):
    """GEMM (bf16), context and generation attention (bf16, head_dim 128), NCCL collectives.

    Rows carry ``power=full`` (no power limit; cost/power.py): the collector times 3 warm-ups and 6 runs of a CUDA graph,
    bursts too short for the board's power controller to lower the clock, and its GEMM weights
    are never initialised (vLLM's RowParallelLinear allocates them with torch.empty; the
    collector's own TODO notes that random weights were not evaluated), so the tensor cores
    barely switch. Its large GEMMs reach 0.95-0.96 of the A100's peak, above the sustained
    (power-limited, random-data) MAMF figure of 0.87.

    GEMM rows carry how many bytes the collector's loop touches between two reads of each operand
    (``a_reuse_bytes``, ``b_reuse_bytes``: cost/roofline.py l2_hits): collector/vllm/collect_gemm.py
    (ai-dynamo/aiconfigurator@00e9bded) builds six RowParallelLinear layers and applies them in
    turn to one input inside the graph, so the input x (m x k) is read again after one other
    layer's weight and output, and each weight after the input, the five other weights and all six
    outputs.

    ``custom_allreduce`` (default) adds vLLM's custom (non-NCCL, one-/two-shot) all-reduce in
    CUDA-graph mode as ``op=custom_all_reduce`` rows with ``label`` starting ``custom_ar``
    (cost/comm.py custom_all_reduce_time_s; from 8 MiB on vLLM hands them to NCCL).
    """
    root = Path(root)
    rows: list[dict] = []
    src = "aiconfigurator"
    files = _find(root, "gemm_*.csv", gpu)
    for path in files:
        df = _csv(path)
        for r in df.itertuples(index=False):
            # tables that keep aiconfigurator's gemm_dtype column (the full H100 parquet): bf16 and fp16
            # rows as such, per-tensor fp8 as fp8; block-scaled fp8 (fp8_block) has no cost rule
            dtype = _AIC_GEMM_DTYPES.get(str(getattr(r, "gemm_dtype", "bfloat16")))
            if dtype is None:
                continue
            e = 1.0 if dtype == "fp8" else 2.0      # bytes per input element (fp8 GEMMs write bf16)
            x, w, out = e * r.m * r.k, e * r.k * r.n, 2.0 * r.m * r.n
            rows.append(dict(kind="gemm", measured_s=r.latency * 1e-3, m=r.m, n=r.n, k=r.k, dtype=dtype,
                             a_reuse_bytes=w + out, b_reuse_bytes=x + (_AIC_GEMM_LAYERS - 1) * w + _AIC_GEMM_LAYERS * out,
                             source=src, label=f"gemm m={r.m} n={r.n} k={r.k}" + ("" if dtype == "bf16" else f" {dtype}")))
    ctx = _find(root, "context_attention_*.csv", gpu)
    for path in ctx:
        df = _csv(path)
        for r in df.itertuples(index=False):
            rows.append(dict(kind="attention", measured_s=r.latency * 1e-3, batch=r.batch_size, seq_q=r.isl,
                             seq_kv=r.isl, heads=r.num_heads, kv_heads=r.num_key_value_heads, head_dim=128,
                             causal="true", kv_cache_write="true", dtype="bf16", source=src,
                             label=f"prefill b={r.batch_size} s={r.isl} h={r.num_heads}/{r.num_key_value_heads}"))
    gen = _find(root, "generation_attention_*.csv", gpu)
    for path in gen:
        df = _csv(path)
        for r in df.itertuples(index=False):
            rows.append(dict(kind="attention", measured_s=r.latency * 1e-3, batch=r.batch_size, seq_q=1,
                             seq_kv=r.step + 1, heads=r.num_heads, kv_heads=r.num_key_value_heads, head_dim=128,
                             causal="false", kv_cache_write="true", dtype="bf16", source=src,
                             label=f"decode b={r.batch_size} kv={r.step + 1} h={r.num_heads}/{r.num_key_value_heads}"))
    nccl = _find(root, "nccl_perf*.csv", gpu)
    for path in nccl:
        df = _csv(path)
        for r in df.itertuples(index=False):
            op = _AIC_OPS.get(str(r.op_name))
            width = _NCCL_BYTES.get(str(r.nccl_dtype))
            if op is None or width is None:
                continue
            nbytes = r.message_size * width
            rows.append(dict(kind="collective", measured_s=r.latency * 1e-3, op=op, bytes=nbytes,
                             ranks=r.num_gpus, ranks_per_node=r.num_gpus, dtype="bf16", source=src,
                             label=f"nccl {op} {r.num_gpus}x {nbytes:.0f}B"))
    if custom_allreduce:
        for path in _find(root, "custom_allreduce_*.csv", gpu):
            df = _csv(path)
            for r in df.itertuples(index=False):
                if str(r.kernel_source) != "vLLM_custom_graph":
                    continue
                nbytes = r.message_size * 2
                rows.append(dict(kind="collective", measured_s=r.latency * 1e-3, op="custom_all_reduce",
                                 bytes=nbytes, ranks=r.num_gpus, ranks_per_node=r.num_gpus, dtype="bf16",
                                 source=src, label=f"custom_ar {r.num_gpus}x {nbytes:.0f}B"))
    _need(root, files + ctx + gen + nccl, "aiconfigurator tables (gemm_*.csv, *_attention_*.csv, nccl_perf.csv)")
    for r in rows:
        r["power"] = "full"
    return _frame(rows)


# --------------------------------------------------------------------------------------------
# microsoft/vidur: per-op kernel times from the torch profiler, median, ms
# --------------------------------------------------------------------------------------------
def _vidur_ops(r) -> list[tuple[str, dict]]:
    """(op name, row fields) of one mlp.csv row: the GEMMs of one TP worker, norms, elementwise."""
    tp, m = int(r["num_tensor_parallel_workers"]), int(r["num_tokens"])
    h, nh, nkv, ffn = int(r["n_embd"]), int(r["n_head"]), int(r["n_kv_head"]), int(r["n_expanded_embd"])
    hd = h // nh
    gated = str(r.get("use_gated_mlp", "True")).lower() in ("true", "1")
    up = (2 if gated else 1) * ffn // tp
    return [
        # each GEMM's input (A) was written by the kernel just before it: a_reuse_bytes = 0
        ("attn_pre_proj", dict(kind="gemm", m=m, k=h, n=(nh + 2 * nkv) * hd // tp, a_reuse_bytes=0)),
        ("attn_post_proj", dict(kind="gemm", m=m, k=h // tp, n=h, a_reuse_bytes=0)),
        ("mlp_up_proj", dict(kind="gemm", m=m, k=h, n=up, a_reuse_bytes=0)),
        ("mlp_down_proj", dict(kind="gemm", m=m, k=ffn // tp, n=h, a_reuse_bytes=0)),
        ("input_layernorm", dict(kind="norm", elements=m * h, reads=1, writes=1, load_bytes=2, fresh_reads=1)),
        ("post_attention_layernorm", dict(kind="norm", elements=m * h, reads=1, writes=1, load_bytes=2, fresh_reads=1)),
        ("mlp_act", dict(kind="elementwise", elements=m * ffn // tp, reads=2 if gated else 1, writes=1,
                         load_bytes=2, fresh_reads=2 if gated else 1)),
        ("attn_rope", dict(kind="elementwise", elements=m * (nh + nkv) * hd // tp, reads=1, writes=1,
                           load_bytes=2, fresh_reads=1)),
        ("add", dict(kind="elementwise", elements=m * h, reads=2, writes=1, fresh_reads=1)),
    ]


# vidur/profiling/mlp/mlp_wrapper.py: WARMUP_STEPS = 2, ACTIVE_STEPS = 20 runs of one point's block
_VIDUR_STEPS = 22


def convert_vidur(root: str | Path, *, legacy_attention: bool = True, send_recv: bool = True,
                  gpu: str | None = None):
    """Llama-2 per-layer GEMMs, RMSNorm and elementwise ops (fp16), NCCL all_reduce (and send_recv).

    ``legacy_attention`` adds the older FlashAttention prefill/decode table (Llama-2-70B at TP2):
    sarathi's 2024 FlashAttention wrapper over a paged cache of 16-token blocks; its prefill calls
    ``flash_attn_with_kvcache`` with the chunk's k and v, which the kernel appends to the cache
    itself, redundantly per CTA (rows marked ``kv_append=true``; sarathi-serve
    model_executor/attention/flash_attention_wrapper.py).
    ``send_recv=False`` leaves the point-to-point rows out. The network files' ``size`` column is
    bytes, not fp16 elements (see the comment where it is read). Its RMSNorm, SiLU-and-mul and
    RoPE rows time sarathi-serve's CUDA kernels, forked from vLLM's 2023 ``rms_norm_kernel``,
    ``act_and_mul_kernel`` and ``rotary_embedding_kernel``: one 2-byte element per thread per loop
    iteration, so the rows carry ``load_bytes=2`` (latency-bound, cost/latency.py); its ``add`` is
    PyTorch's vectorised kernel. Each of these reads a tensor the kernel just before it wrote (the
    add: the down projection's output; the norms: the embedding's and the first residual add's
    outputs; SiLU-and-mul and RoPE: the up and QKV projections' outputs), so the rows carry
    ``fresh_reads`` (read from L2 when it fits: cost/roofline.py fresh_l2_bytes), and so does each
    GEMM's input (the norms', the attention stand-in's (``randn_like``) and SiLU-and-mul's outputs:
    ``a_reuse_bytes=0``; its error moves by under 0.1 point). vidur runs each
    (tokens, TP) point's block _VIDUR_STEPS times back to back with random weights: its rows carry
    ``held_s``, that many times the block's measured kernel time (the die warms over a long
    point; cost/power.py).
    """
    root = Path(root)
    rows: list[dict] = []
    src = "vidur"
    mlp = _find(root, "mlp.csv", gpu)
    for path in mlp:
        model = path.parent.name
        df = _csv(path)
        for r in df.to_dict("records"):
            tp = int(r["num_tensor_parallel_workers"])
            point = []
            for name, fields in _vidur_ops(r):
                t = r.get(f"time_stats.{name}.median")
                if t is None or (isinstance(t, float) and math.isnan(t)):
                    continue
                point.append(dict(measured_s=t * 1e-3, dtype="fp16", source=src,
                                  label=f"{model} tp{tp} {name} tokens={int(r['num_tokens'])}", **fields))
            held = _VIDUR_STEPS * sum(row["measured_s"] for row in point)
            rows += [dict(row, held_s=held) for row in point]
    net = _find(root, "all_reduce.csv", gpu) + (_find(root, "send_recv.csv", gpu) if send_recv else [])
    for path in net:
        df = _csv(path)
        for r in df.to_dict("records"):
            op = str(r["collective"])
            t = r.get(f"time_stats.{op}.median")
            if t is None or (isinstance(t, float) and math.isnan(t)):
                continue
            # `size` is already bytes: vidur's CollectiveWrapper.profile writes `size * 2` for its fp16
            # buffer (vidur/profiling/collectives/collectives_wrapper.py), and the element counts it
            # sweeps (get_collectives_sizes_to_profile: 1024, 5120, ... up to 4096 x 8192) appear
            # doubled in the CSV (2048, 10240, ... 67108864).
            nbytes = int(r["size"])
            ranks, per_node = int(r["num_workers"]), int(r["devices_per_node"])
            rows.append(dict(kind="collective", measured_s=t * 1e-3, op=op, bytes=nbytes, ranks=ranks,
                             ranks_per_node=per_node, dtype="fp16", source=src,
                             label=f"nccl {op} {ranks}x({per_node}/node) {nbytes}B"))
    att = _find(root, "attention*.csv", gpu) if legacy_attention else []
    for path in att:
        df = _csv(path)
        for r in df.to_dict("records"):
            tp = int(r["num_tensor_parallel_workers"])
            heads, kv_heads = int(r["n_q_head"]) // tp, max(1, int(r["n_kv_head"]) // tp)
            hd = int(r["n_embd"]) // int(r["n_q_head"])
            prefill = str(r["is_prefill"]).lower() in ("true", "1")
            b, cached = int(r["batch_size"]), int(r["kv_cache_size"])
            if prefill:
                t, sq = r.get("time_stats.attn_prefill.median"), int(r["prefill_chunk_size"])
            else:
                t, sq = r.get("time_stats.attn_decode.median"), 1
            if t is None or (isinstance(t, float) and math.isnan(t)) or sq <= 0:
                continue
            # sarathi's wrapper passes the new k, v to flash_attn_with_kvcache (prefill and decode),
            # which appends them to the paged cache inside the kernel, every CTA its causal range
            # again (kv_append); its decode hands the kernel q's GQA-swapped view without copies
            rows.append(dict(kind="attention", measured_s=t * 1e-3, batch=b, seq_q=sq, seq_kv=cached + sq,
                             heads=heads, kv_heads=kv_heads, head_dim=hd, causal="true" if prefill else "false",
                             kv_append="true", paged="true", dtype="fp16", source=src,
                             label=f"{'prefill' if prefill else 'decode'} b={b} q={sq} kv={cached + sq}"))
    _need(root, mlp + net + att, "vidur profiles (mlp.csv, all_reduce.csv, send_recv.csv, attention.csv)")
    return _frame(rows)


# --------------------------------------------------------------------------------------------
# PrincetonUniversity/LLMCompass: wall clock (time.time() around op + synchronize), median
# --------------------------------------------------------------------------------------------
def _num(text) -> float:
    return float(str(text).strip().rstrip("smTflopsu").strip())


# GPT-3 175B layer, TP4, prefill batch 8 x 2048 and decode batch 8 at KV 3072 (LLMCompass fig. 5i-l)
_GPT3 = dict(d=12288, heads=96, tp=4, batch=8, seq=2048, kv=3072)
_LAYER_OPS = ("Q_K_V", "Q_mul_K", "A_mul_V", "Wo_proj", "W1_proj", "W2_proj", "Softmax", "LayerNorm_MHA",
              "LayerNorm_FFN", "GeLU", "AllReduce_MHA", "AllReduce_FFN")


def _gpt3_layer(decode: bool) -> list[dict]:
    g = _GPT3
    d, tp = g["d"], g["tp"]
    hd = d // g["heads"]
    bh = g["batch"] * g["heads"] // tp
    n = g["batch"] * (1 if decode else g["seq"])
    sq, skv = (1, g["kv"]) if decode else (g["seq"], g["seq"])
    return [
        dict(kind="gemm", m=n, k=d, n=3 * d // tp),
        dict(kind="gemm", batch=bh, m=sq, k=hd, n=skv),
        dict(kind="gemm", batch=bh, m=sq, k=skv, n=hd),
        dict(kind="gemm", m=n, k=d // tp, n=d),
        dict(kind="gemm", m=n, k=d, n=4 * d // tp),
        dict(kind="gemm", m=n, k=4 * d // tp, n=d),
        dict(kind="softmax", elements=bh * sq * skv, reads=1, writes=1),
        dict(kind="norm", elements=n * d, reads=1, writes=1),
        dict(kind="norm", elements=n * d, reads=1, writes=1),
        dict(kind="elementwise", elements=n * 4 * d // tp, reads=1, writes=1),
        dict(kind="collective", op="all_reduce", bytes=n * d * 2, ranks=tp, ranks_per_node=tp),
        dict(kind="collective", op="all_reduce", bytes=n * d * 2, ranks=tp, ranks_per_node=tp),
    ]


# LLMCompass's softmax rows are eager torch.softmax, but from a 2023 PyTorch (its environment.yml
# pins none): that dispatch (a warp per row up to 1024 elements, then cunn_SoftMaxForward with up
# to 512 threads, no register or shared-memory kernels, as in pytorch/pytorch@e9865f53's SoftMax.cu)
# is not the one cost/rowwise.py describes,
# so the rows carry no ``row`` and are priced by their bytes.
# LLMCompass's software_model/layernorm.py and gelu.py time a function wrapped in @torch.compile
# (TorchDynamo's guard checks and the compiled wrapper run on every call: tens of microseconds on
# the PyTorch 2.0-era host, against the 12-13 us of its eager softmax rows); matmul and softmax
# call eager torch ops
_LLMCOMPASS_TIMING = {"norm": "compiled", "elementwise": "compiled", "softmax": "wall", "gemm": "wall"}


def convert_llmcompass(root: str | Path, *, gpu: str | None = None):
    """fp16 matmul, softmax, layernorm, GELU sweeps, GPT-3 layer ops, 4xA100 all-reduce.

    Times are wall clock with PyTorch dispatch and launch included: rows carry ``timing=wall``,
    or ``timing=compiled`` for the LayerNorm and GELU rows, whose function is torch.compile'd
    (except the transcribed all-reduce sweep, see below).
    """
    root = Path(root)
    rows: list[dict] = []
    src = "llmcompass"
    common = dict(dtype="fp16", source=src, timing="wall")
    found: list[Path] = []
    for path in _find(root, "matmul_*.csv", gpu):
        found.append(path)
        for r in _csv(path, header=None).itertuples(index=False):
            m, n, k = int(r[0]), int(r[1]), int(r[2])
            rows.append(dict(kind="gemm", measured_s=_num(r[3]) * 1e-3, m=m, n=n, k=k,
                             label=f"matmul {m}x{n}x{k}", **common))
    for pattern, kind in (("softmax_*.csv", "softmax"), ("layernorm_*.csv", "norm")):
        for path in _find(root, pattern, gpu):
            found.append(path)
            for r in _csv(path, header=None).itertuples(index=False):
                elements = int(r[0]) * int(r[1])
                rows.append(dict(kind=kind, measured_s=elements / (float(r[2]) * 1e9), elements=elements,
                                 reads=1, writes=1, label=f"{kind} {int(r[0])}x{int(r[1])}",
                                 **{**common, "timing": _LLMCOMPASS_TIMING[kind]}))
    for path in _find(root, "gelu_*.csv", gpu):
        found.append(path)
        for r in _csv(path, header=None).itertuples(index=False):
            elements = int(r[0])
            rows.append(dict(kind="elementwise", measured_s=elements / (float(r[1]) * 1e9), elements=elements,
                             reads=1, writes=1, label=f"gelu {elements}",
                             **{**common, "timing": _LLMCOMPASS_TIMING["elementwise"]}))
    for pattern, decode in (("transformer_*.csv", False), ("transformerAR_*.csv", True)):
        for path in _find(root, pattern, gpu):
            found.append(path)
            times = [float(x) for x in path.read_text().split()]
            if len(times) != len(_LAYER_OPS):
                raise DataError(f"{path}: expected {len(_LAYER_OPS)} latencies (one per line), found {len(times)}.")
            for name, t, fields in zip(_LAYER_OPS, times, _gpt3_layer(decode)):
                rows.append(dict(measured_s=t, label=f"gpt3-tp4 {'decode' if decode else 'prefill'} {name}",
                                 **fields, **{**common, "timing": _LLMCOMPASS_TIMING.get(fields["kind"], "wall")}))
    for path in _find(root, "allreduce_*.csv", gpu):
        found.append(path)
        df = _csv(path)
        for r in df.itertuples(index=False):
            # timed by the NCCL test harness, not one eager op: 12.5 us at 8 bytes leaves no room for
            # Python dispatch, so these rows are kernel times
            rows.append(dict(kind="collective", measured_s=r.latency_us * 1e-6, op="all_reduce", bytes=r.size_bytes,
                             ranks=4, ranks_per_node=4, label=f"all_reduce 4x {r.size_bytes}B",
                             **{**common, "timing": "kernel"}))
    _need(root, found, "LLMCompass real_hardware CSVs")
    return _frame(rows)


def convert(source: str, root: str | Path, *, gpu: str | None = None, **options):
    """Dispatch on ``source`` (one of :data:`SOURCES`). ``gpu`` (a100, h100, ...) keeps the files
    below that GPU's folders; it is required when ``root`` holds measurements of several GPUs."""
    table = {"aiconfigurator": convert_aiconfigurator, "vidur": convert_vidur, "llmcompass": convert_llmcompass}
    if source not in table:
        raise DataError(f"unknown source '{source}'; allowed: {', '.join(SOURCES)}.")
    if not Path(root).is_dir():
        raise DataError(f"{root}: not a folder.")
    present = gpus_under(root)
    if gpu is None and len(present) > 1:
        raise DataError(f"{root}: holds measurements of several GPUs ({', '.join(present)}); "
                        "pick one with gpu= (validate/convert.py --gpu).")
    if gpu is not None and present and gpu.lower() not in present:
        raise DataError(f"{root}: no measurements of '{gpu}'; the GPUs there are {', '.join(present)}.")
    return table[source](root, gpu=gpu, **options)
