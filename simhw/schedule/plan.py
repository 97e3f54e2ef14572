"""Frozen activation plans: per layer and saved-tensor class, keep / offload / recompute.

A plan is data (YAML). ``simhw simulate --plan`` replays it; ``simhw schedule`` writes one.
MEMO's token-wise policy (Zhao et al. 2024, arXiv 2407.12117, §4.1) is a fraction: offload
``alpha`` of a tensor's tokens and recompute the rest. Built-in plans:

- ``none``: keep everything on the device;
- ``full-recompute``: keep each layer's input, recompute the rest (Chen et al. 2016);
- ``selective``: recompute attention scores (Korthikanti et al. 2022 §5);
- ``cpu-offload``: offload every saved tensor to host memory;
- ``ssdtrain``: offload every saved tensor to NVMe through host memory (SSDTrain, arXiv 2408.10013);
- ``memo``: MEMO token-wise: input and attention output offloaded whole, the other classes
  offloaded for a fraction alpha of the tokens and recomputed for the rest; the last two
  layers keep everything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Mapping

from ..errors import PlanError
from ..yamlio import check_keys, read_yaml

TENSOR_CLASSES = ("input", "attn_norm", "qkv", "attn_out", "mlp_norm", "mlp_act", "mlp_mid", "masks", "scores",
                  "moe_in")


class Action(Enum):
    KEEP = "keep"
    CPU = "cpu"           # offload to host memory over PCIe
    NVME = "nvme"         # offload to NVMe through host memory
    RECOMPUTE = "recompute"


@dataclass(frozen=True)
class TensorPolicy:
    """What to do with one saved-tensor class of one layer.

    ``offload_fraction`` in [0, 1] is MEMO's alpha: that share of the tokens goes to ``action``'s
    target; ``keep_fraction`` stays on the device; the rest is recomputed (both ignored for
    keep/recompute actions).
    """

    action: Action = Action.KEEP
    offload_fraction: float = 1.0
    keep_fraction: float = 0.0


@dataclass(frozen=True)
class Plan:
    name: str
    default: TensorPolicy = TensorPolicy()
    classes: Mapping[str, TensorPolicy] = field(default_factory=dict)          # class -> policy, all layers
    layers: Mapping[int, Mapping[str, TensorPolicy]] = field(default_factory=dict)  # per-layer overrides
    prefetch_distance: int = 1               # layers ahead the H2D prefetch may run in backward
    keep_last_layers: int = 0                # layers at the end of the forward that are never offloaded
    source: str = ""
    # recompute as the workload's own memory.recompute runs it (the op graph's recompute ops: the
    # whole layer for Megatron's full recompute, torch.utils.checkpoint's early stop for eager),
    # not as the recomputed classes' producers; simulate's default plan
    workload_recompute: bool = False
    # Transformer Engine's CPU offload context: the k-th of n offloaded layers' copy to the host must
    # be done before the forward of layer (k + 1) L / n starts (its layer_window_map), so the
    # compute waits for a copy that runs late instead of running ahead of it
    copy_deadlines: bool = False

    def policy(self, layer: int, tensor: str, layers_total: int) -> TensorPolicy:
        if layer >= layers_total - self.keep_last_layers:
            return TensorPolicy(Action.KEEP)
        per_layer = self.layers.get(layer, {})
        if tensor in per_layer:
            return per_layer[tensor]
        return self.classes.get(tensor, self.default)


def builtin_plan(name: str, alpha: float = 1.0) -> Plan:
    off = lambda a: TensorPolicy(a)   # noqa: E731
    rec = TensorPolicy(Action.RECOMPUTE)
    plans = {
        "none": Plan("none"),
        "full-recompute": Plan("full-recompute", default=rec, classes={"input": TensorPolicy()}),
        "selective": Plan("selective", classes={"scores": rec}),
        "cpu-offload": Plan("cpu-offload", default=off(Action.CPU)),
        "ssdtrain": Plan("ssdtrain", default=off(Action.NVME), keep_last_layers=1),
        "memo": Plan("memo", default=TensorPolicy(Action.CPU, alpha),
                     classes={"input": off(Action.CPU), "attn_out": off(Action.CPU), "scores": rec},
                     keep_last_layers=2),
    }
    if name not in plans:
        raise PlanError(f"unknown plan '{name}'; built-in plans: {', '.join(plans)}; or pass a plan YAML.")
    return plans[name]


def workload_plan(wl) -> Plan:
    """The plan of ``wl``'s own ``memory.recompute`` (none, selective and its modules, full and its
    layers, op), keeping what that recompute leaves and recomputing as the workload's op graph does
    (workload_recompute): what simulate runs without a plan."""
    from dataclasses import replace
    mem = wl.memory
    label = {"none": "none", "selective": "selective", "full": "full-recompute", "op": "op"}[mem.recompute.value]
    if mem.recompute_modules:
        label += " " + mem.recompute_label()
    elif mem.recompute_layers:
        label += f" of {mem.recompute_layers} layers per chunk"
    # the workload keeps what its own recompute leaves (cost/saved_tensors.py), on the device but for
    # the first offload_layers layers, whose tensors go to host memory (Megatron's CPU offloading)
    cpu = {t: TensorPolicy(Action.CPU) for t in TENSOR_CLASSES}
    layers = {i: cpu for i in range(mem.offload_layers)}
    if mem.offload_layers:
        label += f", {mem.offload_layers} layers offloaded"
    return replace(builtin_plan("none"), name=label, layers=layers, workload_recompute=True,
                   copy_deadlines=bool(mem.offload_layers))


BUILTIN_PLANS = ("none", "full-recompute", "selective", "cpu-offload", "ssdtrain", "memo")


def load_plan(name_or_path: str) -> Plan:
    """A built-in plan name or a plan YAML file."""
    if name_or_path in BUILTIN_PLANS:
        return builtin_plan(name_or_path)
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        return builtin_plan(name_or_path)           # an unknown built-in name: its error lists them
    raw = read_yaml(path, PlanError)
    where = str(path)
    raw = check_keys(raw, ("name", "version", "default", "classes", "layers", "prefetch_distance",
                           "keep_last_layers", "source", "predicted"), where, PlanError)
    classes = {}
    for tensor, value in check_keys(raw.get("classes") or {}, TENSOR_CLASSES, f"{where}: classes", PlanError).items():
        classes[tensor] = _policy(value, f"{where}: classes.{tensor}")
    layers: dict[int, dict[str, TensorPolicy]] = {}
    for layer, per in (raw.get("layers") or {}).items():
        if not isinstance(layer, int) or layer < 0:
            raise PlanError(f"{where}: layers.{layer}: layer keys are layer numbers (0, 1, ...).")
        items = check_keys(per, TENSOR_CLASSES, f"{where}: layers.{layer}", PlanError)
        layers[layer] = {t: _policy(v, f"{where}: layers.{layer}.{t}") for t, v in items.items()}
    return Plan(name=str(raw.get("name", path.stem)), default=_policy(raw.get("default", "keep"), f"{where}: default"),
                classes=classes, layers=layers, prefetch_distance=int(raw.get("prefetch_distance", 1)),
                keep_last_layers=int(raw.get("keep_last_layers", 0)), source=str(raw.get("source", "")))


def _policy(value, where: str) -> TensorPolicy:
    if isinstance(value, str):
        value = {"action": value}
    value = check_keys(value, ("action", "offload_fraction", "keep_fraction"), where, PlanError, required=("action",))
    try:
        action = Action(value["action"])
    except ValueError:
        raise PlanError(f"{where}.action: {value['action']!r} is not allowed; choose one of: "
                        f"{', '.join(a.value for a in Action)}.") from None
    fracs = []
    for key, default in (("offload_fraction", 1.0), ("keep_fraction", 0.0)):
        frac = value.get(key, default)
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise PlanError(f"{where}.{key}: expected a number from 0 to 1, got {frac!r}.")
        fracs.append(float(frac))
    if fracs[0] + fracs[1] > 1 + 1e-9:
        raise PlanError(f"{where}: offload_fraction + keep_fraction = {sum(fracs):g} exceeds 1.")
    return TensorPolicy(action, *fracs)


def validate_plan(plan: Plan, layers: int) -> None:
    """A plan may not name layers the workload does not have."""
    bad = [layer for layer in plan.layers if layer >= layers]
    if bad:
        raise PlanError(f"plan '{plan.name}' names layer {bad[0]}, but the workload has layers 0..{layers - 1}.")


def plan_to_yaml(plan: Plan, predicted: Mapping[str, float] | None = None) -> str:
    import yaml

    def pol(p: TensorPolicy):
        if p.offload_fraction == 1.0 and p.keep_fraction == 0.0:
            return p.action.value
        return {"action": p.action.value, "offload_fraction": round(p.offload_fraction, 6),
                "keep_fraction": round(p.keep_fraction, 6)}
    data = {"name": plan.name, "version": 1, "default": pol(plan.default),
            "classes": {k: pol(v) for k, v in plan.classes.items()},
            "layers": {int(k): {t: pol(p) for t, p in v.items()} for k, v in plan.layers.items()},
            "prefetch_distance": plan.prefetch_distance, "keep_last_layers": plan.keep_last_layers,
            "source": plan.source}
    if predicted:
        data["predicted"] = {k: float(v) for k, v in predicted.items()}
    return yaml.safe_dump(data, sort_keys=False)
