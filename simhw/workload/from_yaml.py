"""Read workload YAML (and ``--set`` overrides) into a frozen :class:`Workload`, strictly.

Every field is documented in docs/workloads.md. Errors name the file and the YAML path, say what
was wrong and what is allowed.
"""
from __future__ import annotations

from dataclasses import fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from ..errors import SpecError, WorkloadError
from ..spec.model import DType
from ..units import Dim, parse_quantity
from ..yamlio import check_keys, closest, read_yaml
from .hf_config import hf_config_fields
from .builtins import BUILTIN, builtin_model
from .model_checks import check_model
from .recompute import check_layers, check_modules, check_offload, check_op, chunk_size, parse_modules
from .models import Activation, ModelConfig, Norm, Position, Recurrent
from .layout import Piece
from .precision import parse_precision
from .spec import (AllReduceKernel, DecodeOptions, EngineOptions, Framework, Loss, MemoryOptions, Mode, Optimizer,
                   OptimizerKernel, Parallelism, PipeSchedule, Recompute, Workload)

SUPPORTED_VERSIONS = (1,)
_TOP = ("name", "version", "model", "mode", "seq_len", "global_batch", "micro_batch", "dtype",
        "optimizer", "devices", "parallelism", "memory", "decode", "engine", "framework", "optimizer_kernel",
        "precision", "description", "source")
_MODEL_KEYS = tuple(f.name for f in fields(ModelConfig)) + ("hf_config", "base")
_PAR_KEYS = tuple(f.name for f in fields(Parallelism))
_MEM_KEYS = tuple(f.name for f in fields(MemoryOptions))
_DEC_KEYS = tuple(f.name for f in fields(DecodeOptions))
_ENGINE_KEYS = ("step_overhead", "per_sequence", "host_per_layer", "per_worker", "all_reduce")
_SHORTHAND = {"model": "base", "engine": "preset", "precision": "recipe"}   # `key: NAME` stands for {field: NAME}


def load_workload(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Workload:
    """Load a workload YAML, apply ``key=value`` overrides, validate, return the frozen value."""
    path = Path(path)
    raw = read_yaml(path, WorkloadError)
    if not isinstance(raw, Mapping):
        raise WorkloadError(f"{path}: expected a mapping at the top level (model, mode, seq_len, ...).")
    raw = apply_overrides(dict(raw), overrides, str(path))
    return workload_from_dict(raw, str(path), base_dir=path.parent)


def apply_overrides(raw: dict, overrides, where: str) -> dict:
    """``--set a.b=value``: the value is parsed as YAML (numbers, booleans, strings)."""
    import yaml

    for item in overrides or ():
        if "=" not in item:
            raise WorkloadError(f"--set {item!r}: expected KEY=VALUE, e.g. --set seq_len=8192.")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts or parts[0] not in _TOP:
            raise WorkloadError(f"--set {item!r}: unknown field '{key}'{closest(parts[0] if parts else '', _TOP)}; "
                                f"allowed top-level fields: {', '.join(_TOP)}.")
        value = yaml.safe_load(text) if text.strip() else ""
        node = raw
        for p in parts[:-1]:
            child = node.get(p)
            if isinstance(child, str) and p in _SHORTHAND:
                child = {_SHORTHAND[p]: child}
            node[p] = dict(child) if isinstance(child, Mapping) else {}
            node = node[p]
        node[parts[-1]] = value
    return raw


def workload_from_dict(raw: Mapping, where: str = "<workload>", base_dir: Path | None = None) -> Workload:
    w = f"{where}: "
    check_keys(raw, _TOP, where, WorkloadError, required=("model", "mode"))
    version = raw.get("version", 1)
    if version not in SUPPORTED_VERSIONS:
        raise WorkloadError(f"{w}version: {version!r} is not supported; supported: {SUPPORTED_VERSIONS}.")
    model = _model(raw["model"], w, base_dir or Path("."))
    mode = _enum(Mode, raw["mode"], f"{w}mode")
    seq_len = _pos_int(raw, "seq_len", w, default=2048)
    micro = _pos_int(raw, "micro_batch", w, default=1)
    gbatch = _pos_int(raw, "global_batch", w, default=micro)
    par = _parallelism(raw.get("parallelism", {}), w)
    if model.heads % par.tp or model.kv_heads % par.tp and par.tp % model.kv_heads:
        raise WorkloadError(f"{w}parallelism.tp: tp = {par.tp} does not divide the {model.heads} attention heads "
                            f"({model.kv_heads} KV heads) of {model.name}; choose a divisor.")
    if par.pp > model.layers:
        raise WorkloadError(f"{w}parallelism.pp: pp = {par.pp} stages for the {model.layers} layers of "
                            f"{model.name}; give each stage at least one layer.")
    if model.layers % par.pp and par.schedule not in (PipeSchedule.ONE_F_ONE_B, PipeSchedule.GPIPE,
                                                      PipeSchedule.ZB_H1, PipeSchedule.INTERLEAVED):
        raise WorkloadError(f"{w}parallelism.pp: pp = {par.pp} does not divide the {model.layers} layers of "
                            f"{model.name}, which the {par.schedule.value} schedule's model chunks need; choose a "
                            f"divisor (uneven stages work with 1f1b, gpipe, zb-h1 and interleaved).")
    devices = _pos_int(raw, "devices", w, default=par.tp * par.pp * par.cp * par.dp)
    if "dp" not in (raw.get("parallelism") or {}):
        denom = par.tp * par.pp * par.cp
        if devices % denom:
            raise WorkloadError(f"{w}devices: {devices} is not a multiple of tp x pp x cp = {denom}.")
        par = replace(par, dp=devices // denom)
    if par.tp * par.pp * par.cp * par.dp != devices:
        raise WorkloadError(f"{w}parallelism: tp x pp x cp x dp = {par.tp * par.pp * par.cp * par.dp} "
                            f"but devices = {devices}; make them equal.")
    if par.ep_imbalance > par.ep:
        raise WorkloadError(f"{w}parallelism.ep_imbalance: {par.ep_imbalance:g} is more than the ep = {par.ep} ranks "
                            f"could hold (all routed tokens on one rank is ep); it applies with ep > 1.")
    if par.ep > 1 and (not model.moe or par.dp % par.ep or model.experts % par.ep):
        raise WorkloadError(f"{w}parallelism.ep: ep = {par.ep} needs a mixture-of-experts model whose experts "
                            f"({model.experts}) and data-parallel ranks (dp = {par.dp}) it divides.")
    if par.interleave > 1 and model.layers < par.pp * par.interleave:
        raise WorkloadError(f"{w}parallelism.interleave: pp x interleave = {par.pp * par.interleave} model chunks "
                            f"for the {model.layers} layers of {model.name}; give each chunk at least one layer.")
    if par.attention_dp and (mode is Mode.TRAIN or par.tp == 1 or micro % par.tp or par.sp):
        raise WorkloadError(f"{w}parallelism.attention_dp: data-parallel attention serves (prefill, decode) with "
                            f"tp > 1, each TP rank its own sequences, so micro_batch ({micro}) must be a multiple "
                            f"of tp ({par.tp}), without sp; mode is {mode.value}.")
    if mode is Mode.TRAIN and gbatch % (micro * par.dp):
        raise WorkloadError(f"{w}global_batch: {gbatch} is not a multiple of micro_batch x dp = {micro * par.dp}.")
    if mode is not Mode.DECODE and par.interleave > 1 and (gbatch // (micro * par.dp)) % par.pp:
        # Megatron-LM's interleaved 1F1B walks the micro-batches in groups of pp
        raise WorkloadError(f"{w}global_batch: the interleaved schedule needs the micro-batches per pipeline "
                            f"(global_batch / (micro_batch x dp) = {gbatch // (micro * par.dp)}) to be a multiple "
                            f"of pp = {par.pp}.")
    if par.cp > 1 and model.recurrent_layers:
        raise WorkloadError(f"{w}parallelism.cp: context parallelism over {model.name}'s recurrent layers would pass "
                            f"each chunk's state from rank to rank, which simhw does not model; use cp: 1 (tp, pp "
                            f"and dp split it).")
    if par.cp > 1 and seq_len % par.cp:
        raise WorkloadError(f"{w}seq_len: {seq_len} is not a multiple of cp = {par.cp}.")
    dtype = _dtype(raw.get("dtype", "bf16"), f"{w}dtype")
    default_opt = "adam" if mode is Mode.TRAIN else "none"
    optimizer = _enum(Optimizer, raw.get("optimizer", default_opt), f"{w}optimizer")
    memory = _memory(raw.get("memory", {}), w)
    if memory.weight_bits and mode is Mode.TRAIN:
        raise WorkloadError(f"{w}memory.weight_bits: weight-only quantization ({memory.weight_bits:g} bits) applies to "
                            f"serving (prefill, decode); training updates its weights in the workload's dtype. Drop it "
                            f"or set mode: prefill or decode.")
    precision = parse_precision(raw.get("precision"), w, model.layers)
    if precision.dtype is not None and (memory.weight_bits or dtype.bytes < 2):
        clash = "memory.weight_bits (weight-only)" if memory.weight_bits else f"dtype {dtype.value}"
        raise WorkloadError(f"{w}precision: the {precision.recipe.value} recipe quantizes the linears' weights and "
                            f"inputs of a 16- or 32-bit model, so it does not combine with {clash}; keep dtype bf16 "
                            f"and drop weight_bits.")
    decode = _decode(raw.get("decode", {}), w, mode, seq_len, model, base_dir or Path("."))
    engine = _engine(raw.get("engine", {}), w)
    framework = _enum(Framework, raw.get("framework", "fused"), f"{w}framework")
    kernel = raw.get("optimizer_kernel")
    if kernel is not None:
        kernel = _enum(OptimizerKernel, kernel, f"{w}optimizer_kernel")
        if framework is Framework.FUSED:
            raise WorkloadError(f"{w}optimizer_kernel: applies to framework eager or compiled (torch.optim); "
                                f"the fused framework's update is always one fused kernel.")
    memory = _default_loss(memory, raw.get("memory"), framework)
    if precision.quantized_weights and framework is not Framework.FUSED:
        raise WorkloadError(f"{w}precision.quantized_weights: weights stored only in the recipe's format are Megatron's "
                            f"(framework: fused); {framework.value} PyTorch keeps them in the dtype. Drop it or use "
                            f"framework: fused.")
    check_modules(memory, model, framework, mode, w)
    check_op(memory, model, framework, w)
    check_layers(memory, chunk_size(model.layers, par), w)
    check_offload(memory, model.layers, mode, par, w)
    name = str(raw.get("name") or Path(where).stem)
    wl = Workload(name=name, model=model, mode=mode, seq_len=seq_len, global_batch=gbatch,
                  micro_batch=micro, dtype=dtype, optimizer=optimizer, devices=devices,
                  parallelism=par, memory=memory, decode=decode, engine=engine, framework=framework,
                  optimizer_kernel=kernel, precision=precision, source=where)
    _check_layout(wl, w)
    return wl


def _check_layout(wl: Workload, w: str) -> None:
    """A pipeline layout names every layer and MTP module once over pp x interleave chunks, each of
    which holds a layer, an MTP module or the loss (workload/layout.py)."""
    par = wl.parallelism
    if not par.layout:
        return
    if par.schedule in (PipeSchedule.V_HALF, PipeSchedule.V_MIN):
        raise WorkloadError(f"{w}parallelism.layout: a Megatron pipeline layout does not apply to the "
                            f"{par.schedule.value} schedule, whose chunks fold back to the first device; drop it.")
    try:
        layout = wl.layout()
    except ValueError as exc:
        raise WorkloadError(f"{w}parallelism.layout: {exc}.") from None
    empty = [c for c, chunk in enumerate(layout.chunks) if not set(chunk) - {Piece.EMBEDDING}]
    if empty:
        raise WorkloadError(f"{w}parallelism.layout: chunk {empty[0]} holds no layer, MTP module or loss; "
                            f"give every chunk some work.")


def _enum(cls: type[Enum], value: Any, where: str):
    try:
        return cls(str(value).lower() if not isinstance(value, bool) else value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise WorkloadError(f"{where}: {value!r} is not allowed; choose one of: {allowed}.") from None


def _dtype(value: Any, where: str) -> DType:
    try:
        return DType.parse(value)
    except ValueError:
        raise WorkloadError(f"{where}: {value!r} is not a data type; choose one of: "
                            f"{', '.join(d.value for d in DType)}.") from None


def _pos_int(data: Mapping, key: str, w: str, default: int | None = None, minimum: int = 1) -> int:
    value = data.get(key, default)
    if value is None:
        raise WorkloadError(f"{w}{key}: missing required value.")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkloadError(f"{w}{key}: expected a whole number ≥ {minimum}, got {value!r}.")
    return value


def _bool(data: Mapping, key: str, w: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise WorkloadError(f"{w}{key}: expected true or false, got {value!r}.")
    return value


def _parallelism(data: Any, w: str) -> Parallelism:
    data = check_keys(data or {}, _PAR_KEYS, f"{w}parallelism", WorkloadError)
    p = f"{w}parallelism."
    interleave = _pos_int(data, "interleave", p, 1)
    # model chunks only mean something to the interleaved schedule: asking for them picks it
    schedule = _enum(PipeSchedule, data.get("schedule", "interleaved" if interleave > 1 else "1f1b"), f"{p}schedule")
    if interleave > 1 and schedule is not PipeSchedule.INTERLEAVED:
        raise WorkloadError(f"{p}interleave: {interleave} model chunks per device need schedule: interleaved, "
                            f"not {schedule.value}; drop interleave or change the schedule.")
    return Parallelism(tp=_pos_int(data, "tp", p, 1), pp=_pos_int(data, "pp", p, 1),
                       dp=_pos_int(data, "dp", p, 1), cp=_pos_int(data, "cp", p, 1), ep=_pos_int(data, "ep", p, 1),
                       sp=_bool(data, "sp", p, False), attention_dp=_bool(data, "attention_dp", p, False),
                       interleave=interleave, schedule=schedule, ep_imbalance=_imbalance(data, p),
                       tp_overlap=_tp_overlap(data, p), layout=_layout_text(data, p))


def _layout_text(data, p: str) -> str:
    v = data.get("layout", "")
    if not isinstance(v, str):
        raise WorkloadError(f"{p}layout: expected a Megatron pipeline layout string such as 'Et*3|(tt|)*29m|L', "
                            f"got {v!r}.")
    return v.strip()


def _tp_overlap(data, p: str) -> bool:
    on = _bool(data, "tp_overlap", p, False)
    if on and not (_bool(data, "sp", p, False) and data.get("tp", 1) != 1):
        raise WorkloadError(f"{p}tp_overlap: overlapping the tensor-parallel collectives with the GEMMs pairs each "
                            f"all-gather and reduce-scatter of sequence parallelism with a GEMM; set sp: true and tp > 1.")
    return on


def _imbalance(data, p: str) -> float:
    v = data.get("ep_imbalance", 1.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1:
        raise WorkloadError(f"{p}ep_imbalance: expected a number of at least 1 (the most loaded expert-parallel "
                            f"rank's routed tokens over the mean), got {v!r}.")
    return float(v)


def _memory(data: Any, w: str) -> MemoryOptions:
    data = check_keys(data or {}, _MEM_KEYS, f"{w}memory", WorkloadError)
    p = f"{w}memory."
    zero = data.get("zero_stage", 0)
    if zero not in (0, 1, 2, 3):
        raise WorkloadError(f"{p}zero_stage: {zero!r} is not allowed; choose 0, 1, 2 or 3.")
    out = {}
    for key, lo, hi in (("kv_bits", 1, 32), ("activation_bits", 1, 32), ("kv_outlier_fraction", 0, 1),
                        ("weight_bits", 0, 32), ("weight_scale_bits", 0, 64)):
        if key in data:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise WorkloadError(f"{p}{key}: expected a number from {lo} to {hi}, got {v!r}.")
            out[key] = float(v)
    modules = parse_modules(data["recompute_modules"], f"{p}recompute_modules") if "recompute_modules" in data \
        else frozenset()
    default = "selective" if modules else "none"     # modules alone imply a selective recompute
    return MemoryOptions(recompute=_enum(Recompute, data.get("recompute", default), f"{p}recompute"),
                         recompute_modules=modules, recompute_layers=_pos_int(data, "recompute_layers", p, 0, 0),
                         offload_layers=_pos_int(data, "offload_layers", p, 0, 0),
                         flash_attention=_bool(data, "flash_attention", p, True), zero_stage=zero,
                         kv_group_size=_pos_int(data, "kv_group_size", p, 128),
                         weight_group_size=_pos_int(data, "weight_group_size", p, 128),
                         loss=_enum(Loss, data.get("loss", "standard"), f"{p}loss"), **out)


def _default_loss(memory: MemoryOptions, raw_memory: Any, framework: Framework) -> MemoryOptions:
    """The fused framework's loss is fused unless the workload names one (Megatron-Bridge's and NeMo's
    model configs set cross_entropy_loss_fusion, its performance recipes Transformer Engine's kernel)."""
    if framework is Framework.FUSED and "loss" not in (raw_memory or {}):
        return replace(memory, loss=Loss.FUSED)
    return memory


def _decode(data: Any, w: str, mode: Mode, seq_len: int, model: ModelConfig, base_dir: Path) -> DecodeOptions:
    data = check_keys(data or {}, _DEC_KEYS, f"{w}decode", WorkloadError)
    p = f"{w}decode."
    k = _pos_int(data, "speculative_tokens", p, 0, 0)
    a = data.get("acceptance", 0.0)
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a < 1.0:
        raise WorkloadError(f"{p}acceptance: expected a probability from 0 to below 1, got {a!r}.")
    if k and mode is not Mode.DECODE:
        raise WorkloadError(f"{p}speculative_tokens: speculative decoding applies to mode: decode, not "
                            f"{mode.value}; drop it or set mode: decode.")
    draft = None
    if data.get("draft_model") is not None:
        draft = _model(data["draft_model"], f"{w}decode.draft_", base_dir)
        if not k:
            raise WorkloadError(f"{p}draft_model: a draft model proposes speculative_tokens per step; set "
                                f"speculative_tokens (and acceptance) or drop draft_model.")
        if draft.vocab != model.vocab:
            raise WorkloadError(f"{p}draft_model: its vocabulary ({draft.vocab}) differs from {model.name}'s "
                                f"({model.vocab}); a draft model must share the model's tokenizer.")
    return DecodeOptions(context_len=_pos_int(data, "context_len", p, seq_len if mode is Mode.DECODE else 0, 0),
                         new_tokens=_pos_int(data, "new_tokens", p, 1),
                         samples=_pos_int(data, "samples", p, 1), speculative_tokens=k, acceptance=float(a),
                         draft_model=draft)


def _engine(data: Any, w: str) -> EngineOptions:
    """engine: NAME (a profile of engines.ENGINES) or {preset: NAME, step_overhead, per_sequence,
    host_per_layer, per_worker: TIME, all_reduce: nccl | custom}; each given value replaces the
    preset's, then the spec's."""
    from .engines import ENGINES

    if isinstance(data, str):
        data = {"preset": data}
    data = dict(check_keys(data or {}, ("preset",) + _ENGINE_KEYS, f"{w}engine", WorkloadError))
    if "preset" in data:
        name = data.pop("preset")
        if name not in ENGINES:
            raise WorkloadError(f"{w}engine: unknown engine {name!r}{closest(str(name), tuple(ENGINES))}; "
                                f"allowed: {', '.join(ENGINES)}, or a mapping of {', '.join(_ENGINE_KEYS)}.")
        data = {**ENGINES[name], **data}
    out = {}
    for key, field in (("step_overhead", "step_overhead_s"), ("per_sequence", "per_sequence_s"),
                       ("host_per_layer", "host_per_layer_s"), ("per_worker", "per_worker_s")):
        if key in data:
            try:
                out[field] = parse_quantity(data[key], Dim.SECONDS, f"{w}engine.{key}", allow_zero=True)
            except SpecError as exc:
                raise WorkloadError(str(exc)) from None
    if "all_reduce" in data:
        out["all_reduce"] = _enum(AllReduceKernel, data["all_reduce"], f"{w}engine.all_reduce")
    return EngineOptions(**out)


def model_from_mapping(value: Any, base_dir: Path, where: str = "") -> ModelConfig:
    """A workload's ``model:`` value (a built-in name, or a mapping with base / hf_config / fields)
    as a checked :class:`ModelConfig`; errors name ``where`` and the key."""
    return _model(value, where, base_dir)


def _model(value: Any, w: str, base_dir: Path) -> ModelConfig:
    if isinstance(value, str):
        model = builtin_model(value)
        if model is None:
            raise WorkloadError(f"{w}model: unknown model '{value}'{closest(value.lower(), BUILTIN)}; "
                                f"built-in models: {', '.join(sorted(BUILTIN))}; or give hf_config: or an inline architecture.")
        return model
    data = check_keys(value, _MODEL_KEYS, f"{w}model", WorkloadError)
    fields_in: dict[str, Any] = {}
    if "base" in data:
        base = _model(data["base"], w, base_dir)
        fields_in = {f.name: getattr(base, f.name) for f in fields(ModelConfig)}
    if "hf_config" in data:
        fields_in.update(hf_config_fields(Path(base_dir, str(data["hf_config"])), f"{w}model.hf_config"))
    for key, v in data.items():
        if key in ("base", "hf_config"):
            continue
        fields_in[key] = v
    for key in ("layers", "hidden", "heads", "ffn", "vocab"):
        if key not in fields_in:
            raise WorkloadError(f"{w}model.{key}: missing; an inline model needs layers, hidden, heads, ffn, vocab.")
    conv = {"activation": Activation, "norm": Norm, "position": Position, "recurrent": Recurrent}
    for key, v in list(fields_in.items()):
        if key in conv and not isinstance(v, Enum):
            fields_in[key] = _enum(conv[key], v, f"{w}model.{key}")
        elif key in ("layers", "hidden", "heads", "ffn", "vocab"):
            fields_in[key] = _pos_int(fields_in, key, f"{w}model.")
        elif key in ("kv_heads", "head_dim", "max_positions"):
            fields_in[key] = _pos_int(fields_in, key, f"{w}model.", minimum=0)
        elif key in ("tied_embeddings", "bias", "dropout", "causal", "attention_gate"):
            fields_in[key] = _bool(fields_in, key, f"{w}model.", False)
    fields_in.setdefault("name", "custom")
    for key in ("experts", "experts_per_token", "expert_ffn", "shared_expert_ffn", "dense_layers",
                "kv_lora_rank", "q_lora_rank", "rope_head_dim", "v_head_dim", "sliding_window", "global_every",
                "attention_every", "recurrent_key_heads", "recurrent_key_dim", "recurrent_value_heads",
                "recurrent_value_dim", "recurrent_chunk", "index_topk", "index_heads", "index_head_dim", "mtp_layers"):
        if key in fields_in:
            fields_in[key] = _pos_int(fields_in, key, f"{w}model.", minimum=0)
    for key in ("recurrent_conv", "recurrent_state_bits"):
        if key in fields_in:
            fields_in[key] = _pos_int(fields_in, key, f"{w}model.")
    if "attention_offset" in fields_in:
        fields_in["attention_offset"] = _pos_int(fields_in, "attention_offset", f"{w}model.", minimum=-1)
    model = ModelConfig(**fields_in)
    check_model(model, w)
    return model
