"""Load hardware specs from YAML: strict, versioned, with aliases and ``extends:``.

The registry is ``hwspecs/`` at the repository root (source checkouts, editable installs) or
``simhw/data/hwspecs`` inside the wheel. ``load_hw("a100")`` finds a spec by name or alias;
``load_hw("path/to/my.yaml")`` loads a file. Every quantity is a string with a unit, or a mapping
``{value: "80 GB", source: "datasheet, table 1"}`` when one value has its own source.
"""
from __future__ import annotations

import copy
import functools
import math
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ..errors import SpecError
from ..units import Dim, parse_quantity
from ..yamlio import check_keys, closest, read_yaml
from .model import (DeviceKind, DeviceSpec, DType, Efficiency, LinkKind, LinkSpec, LinkTopology, MemoryLevel,
                    NodeSpec)

SUPPORTED_VERSIONS = (1,)
_TOP_DEVICE = ("name", "version", "kind", "aliases", "description", "source", "extends", "compute",
               "memory", "links", "power", "energy", "economics", "silicon", "efficiency", "extra")
_TOP_NODE = ("name", "version", "kind", "aliases", "description", "source", "extends", "device",
             "device_count", "links", "host", "drives", "economics")


def hw_dirs() -> list[Path]:
    """Folders searched for shipped specs, first match wins."""
    pkg = Path(__file__).resolve().parent.parent
    return [d for d in (pkg / "data" / "hwspecs", pkg.parent / "hwspecs") if d.is_dir()]


@functools.lru_cache(maxsize=1)
def _index() -> Mapping[str, Path]:
    """name or alias -> file, over all shipped specs (cheap scan of name/aliases lines)."""
    import yaml

    table: dict[str, Path] = {}
    for folder in reversed(hw_dirs()):
        for path in sorted(folder.glob("*.yaml")):
            try:
                raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except yaml.YAMLError:
                raw = None
            names = [path.stem]
            if isinstance(raw, Mapping):
                names += [raw.get("name", "")] + list(raw.get("aliases") or [])
            for n in names:
                if n:
                    table[str(n).lower()] = path
    return MappingProxyType(table)


def available_hw() -> list[tuple[str, str, str]]:
    """(name, kind, description, aliases) of every shipped spec, sorted by kind then name."""
    rows = []
    for path in sorted(set(_index().values())):
        spec = load_hw(str(path))
        kind = "node" if isinstance(spec, NodeSpec) else spec.kind.value
        rows.append((spec.name, kind, spec.description, ", ".join(spec.aliases)))
    return sorted(rows, key=lambda r: (r[1], r[0]))


def resolve_hw_path(name: str) -> Path:
    """A shipped name/alias or a path to a YAML file -> the file. Unknown names suggest the closest."""
    text = str(name)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if not path.exists():
            raise SpecError(f"{text}: hardware spec file not found.")
        return path
    table = _index()
    if text.lower() in table:
        return table[text.lower()]
    raise SpecError(f"unknown hardware '{text}'{closest(text.lower(), table)}; "
                    f"run 'simhw hw list' for the shipped names, or pass a path to a spec YAML.")


def load_hw(name: str) -> DeviceSpec | NodeSpec:
    """Load a device or node spec by shipped name, alias or file path."""
    return _load_path(resolve_hw_path(name).resolve())


def load_hw_varied(name: str, overrides: Sequence[tuple[str, Any]] = ()) -> DeviceSpec | NodeSpec:
    """A spec with some of its YAML values replaced: ``overrides`` are (dotted path, value) pairs
    such as ("memory.hbm.bandwidth", "4 TB/s") or ("efficiency.launch", "2 us"), values as they
    would be written in the YAML (unit strings parsed by the same strict parser). On a node,
    "device.<path>", or a path that only a device has (memory.hbm.bandwidth), changes its device.
    What-if questions of an architect: simhw sweep --vary hw.KEY."""
    if not overrides:
        return load_hw(name)
    path = resolve_hw_path(name).resolve()
    raw = _raw_with_extends(path, ())
    told = ", ".join(f"{k}={v}" for k, v in overrides)
    is_node = raw.get("kind") == "node"

    def of_device(key: str) -> bool:      # on a node: device.<path>, or a path only a device has
        return is_node and (key.startswith("device.") or str(key).split(".")[0] not in _TOP_NODE)
    device_over = [(k.split(".", 1)[1] if k.startswith("device.") else k, v) for k, v in overrides if of_device(k)]
    for key, value in overrides:
        if of_device(key):
            continue
        parts = [p for p in str(key).split(".") if p]
        if not parts:
            raise SpecError(f"{path.name}: an empty spec key in {told}.")
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if child is not None and not isinstance(child, Mapping):
                raise SpecError(f"{path.name}: {'.'.join(parts)}: '{part}' holds a value, not a group of them; "
                                f"name a key that exists in the spec (simhw hw show {name}).")
            node[part] = dict(child) if isinstance(child, Mapping) else {}
            node = node[part]
        old = node.get(parts[-1])
        # a sourced value {value, source} keeps its shape, the source saying it was changed
        node[parts[-1]] = {"value": value, "source": f"what-if: {key}={value}"} if isinstance(old, Mapping) \
            and "value" in old and not isinstance(value, Mapping) else value
    where = f"{path.name} with {told}: "
    if is_node:
        device = load_hw_varied(_device_ref(path, str(raw.get("device", ""))), device_over) if device_over else None
        return _node(raw, where, path, device=device)
    return _device(raw, where, path)


def _device_ref(path: Path, ref: str) -> str:
    """A node's ``device:``: a shipped name, or a YAML path relative to the node's file (as extends:)."""
    local = path.parent / ref
    return str(local.resolve()) if ref.endswith((".yaml", ".yml")) and local.exists() else ref


@functools.lru_cache(maxsize=256)
def _load_path(path: Path) -> DeviceSpec | NodeSpec:
    raw = _raw_with_extends(path, ())
    where = f"{path.name}: "
    kind = raw.get("kind")
    if kind == "node":
        return _node(raw, where, path)
    return _device(raw, where, path)


def _raw_with_extends(path: Path, seen: tuple[Path, ...]) -> dict:
    raw = read_yaml(path, SpecError)
    if not isinstance(raw, Mapping):
        raise SpecError(f"{path}: expected a mapping at the top level (name, version, kind, ...).")
    parent = raw.get("extends")
    if parent is None:
        return dict(raw)
    if path in seen:
        raise SpecError(f"{path}: 'extends' forms a cycle.")
    parent_path = resolve_hw_path(str(parent)).resolve() if not (path.parent / str(parent)).exists() \
        else (path.parent / str(parent)).resolve()
    base = _raw_with_extends(parent_path, seen + (path,))
    base.pop("aliases", None)
    merged = _deep_merge(base, {k: v for k, v in raw.items() if k != "extends"})
    return merged


def _deep_merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Q:
    """Parses quantities under one YAML path and records per-value sources."""

    def __init__(self, where: str):
        self.where = where
        self.sources: dict[str, str] = {}

    def __call__(self, data: Mapping, key: str, dim: Dim, path: str, default=None, **kw) -> float:
        if key not in data:
            if default is None:
                raise SpecError(f"{self.where}{path}.{key}: missing required value.")
            return default
        value = data[key]
        if isinstance(value, Mapping):
            check_keys(value, ("value", "source"), f"{self.where}{path}.{key}", SpecError, required=("value",))
            if "source" in value:
                self.sources[f"{path}.{key}"] = str(value["source"])
            value = value["value"]
        return parse_quantity(value, dim, f"{self.where}{path}.{key}", **kw)


def _common(raw: Mapping, where: str, allowed: tuple[str, ...]) -> tuple[str, int, tuple[str, ...], str, str]:
    check_keys(raw, allowed, where.rstrip(": ") , SpecError, required=("name", "version", "kind", "source"))
    version = raw["version"]
    if version not in SUPPORTED_VERSIONS:
        raise SpecError(f"{where}version: {version!r} is not supported; supported: {SUPPORTED_VERSIONS}.")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise SpecError(f"{where}aliases: expected a list of names.")
    if not str(raw["source"]).strip():
        raise SpecError(f"{where}source: every spec must cite its datasheet or paper.")
    return str(raw["name"]), int(version), tuple(aliases), str(raw.get("description", raw["name"])), str(raw["source"])


def _device(raw: Mapping, where: str, path: Path) -> DeviceSpec:
    name, version, aliases, description, source = _common(raw, where, _TOP_DEVICE)
    try:
        kind = DeviceKind(raw["kind"])
    except ValueError:
        allowed = ", ".join(k.value for k in DeviceKind) + ", node"
        raise SpecError(f"{where}kind: {raw['kind']!r} is not a device kind; allowed: {allowed}.") from None
    q = _Q(where)
    compute = check_keys(raw.get("compute", {}), ("units", "clock", "peak", "sparsity_factor"), f"{where}compute", SpecError)
    peak = {}
    for key, value in check_keys(compute.get("peak", {}), [d.value for d in DType], f"{where}compute.peak", SpecError).items():
        peak[DType(key)] = q(compute["peak"], key, Dim.FLOP_PER_S, "compute.peak")
    memory = tuple(_memory_level(q, lname, level, f"memory.{lname}")
                   for lname, level in check_keys(raw.get("memory", {}), _any(raw.get("memory", {})), f"{where}memory", SpecError).items())
    links = tuple(_link(q, lname, link, f"links.{lname}", where) for lname, link in
                  check_keys(raw.get("links", {}), _any(raw.get("links", {})), f"{where}links", SpecError).items())
    power = check_keys(raw.get("power", {}), ("tdp", "idle", "active"), f"{where}power", SpecError)
    energy = check_keys(raw.get("energy", {}), ("flop", "transport", "hot_flop_factor", "hot_time_constant"),
                        f"{where}energy", SpecError)
    flop_e = check_keys(energy.get("flop", {}), [d.value for d in DType], f"{where}energy.flop", SpecError)
    econ = check_keys(raw.get("economics", {}), ("price", "cloud", "lifespan"), f"{where}economics", SpecError)
    sil = check_keys(raw.get("silicon", {}), ("die_area", "process", "embodied", "mass"), f"{where}silicon", SpecError)
    extra_raw = check_keys(raw.get("extra", {}), _any(raw.get("extra", {})), f"{where}extra", SpecError)
    return DeviceSpec(
        name=name, kind=kind, description=description, source=source, version=version, aliases=aliases,
        peak_flop_per_s=MappingProxyType(peak),
        sparsity_factor=float(compute.get("sparsity_factor", 1.0)),
        compute_units=_positive_int(_sourced(q, compute.get("units", 0), "compute.units"), f"{where}compute.units"),
        clock_hz=q(compute, "clock", Dim.HERTZ, "compute", default=0.0),
        memory=memory, links=links,
        tdp_w=q(power, "tdp", Dim.WATTS, "power", default=0.0),
        idle_w=q(power, "idle", Dim.WATTS, "power", default=0.0),
        active_w=q(power, "active", Dim.WATTS, "power", default=0.0),
        transport_j_per_byte=q(energy, "transport", Dim.J_PER_BYTE, "energy", default=0.0),
        hot_flop_factor=_hot_factor(_sourced(q, energy.get("hot_flop_factor", 1.0), "energy.hot_flop_factor"), where),
        hot_time_constant_s=q(energy, "hot_time_constant", Dim.SECONDS, "energy", default=0.0, allow_zero=True),
        energy_j_per_flop=MappingProxyType({DType(k): q(flop_e, k, Dim.J_PER_FLOP, "energy.flop") for k in flop_e}),
        price_usd=q(econ, "price", Dim.USD, "economics", default=0.0),
        cloud_usd_per_s=q(econ, "cloud", Dim.USD_PER_HOUR, "economics", default=0.0),
        lifespan_s=q(econ, "lifespan", Dim.SECONDS, "economics", default=0.0),
        die_area_m2=q(sil, "die_area", Dim.AREA, "silicon", default=0.0),
        process_nm=q(sil, "process", Dim.LENGTH, "silicon", default=0.0) * 1e9,
        embodied_kgco2e=q(sil, "embodied", Dim.KG, "silicon", default=0.0),
        mass_kg=q(sil, "mass", Dim.KG, "silicon", default=0.0),
        efficiency=_efficiency(q, raw.get("efficiency", {}), where),
        extra=MappingProxyType({k: _extra_value(q, extra_raw, k) for k in extra_raw}),
        sources=MappingProxyType(dict(q.sources)), path=str(path),
    )


def _hot_factor(value: Any, where: str) -> float:
    """energy.hot_flop_factor: a plain number >= 1 (a hot die never spends less per FLOP)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 <= value <= 10.0:
        raise SpecError(f"{where}energy.hot_flop_factor: {value!r} must be a plain number from 1 to 10 "
                        "(energy per FLOP of the die at its sustained temperature over that near idle).")
    return float(value)


def _sourced(q: "_Q", value: Any, path: str) -> Any:
    """A plain value, or ``{value: ..., source: ...}`` whose source is recorded."""
    if isinstance(value, Mapping):
        check_keys(value, ("value", "source"), f"{q.where}{path}", SpecError, required=("value",))
        if "source" in value:
            q.sources[path] = str(value["source"])
        return value["value"]
    return value


def _any(data: Any) -> tuple[str, ...]:
    return tuple(data) if isinstance(data, Mapping) else ()


def _positive_int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where}: expected a whole number ≥ {minimum}, got {value!r}.")
    return value


def _memory_level(q: _Q, name: str, data: Any, path: str) -> MemoryLevel:
    check_keys(data, ("capacity", "bandwidth", "energy", "latency"), f"{q.where}{path}", SpecError, required=("capacity", "bandwidth"))
    return MemoryLevel(name=name, capacity_bytes=q(data, "capacity", Dim.BYTES, path),
                       bandwidth_bytes_per_s=q(data, "bandwidth", Dim.BYTES_PER_S, path),
                       energy_j_per_byte=q(data, "energy", Dim.J_PER_BYTE, path, default=0.0),
                       latency_s=q(data, "latency", Dim.SECONDS, path, default=0.0))


def _link(q: _Q, name: str, data: Any, path: str, where: str) -> LinkSpec:
    check_keys(data, ("kind", "bandwidth", "latency", "energy", "topology", "peers"), f"{where}{path}", SpecError,
               required=("kind", "bandwidth"))
    try:
        kind = LinkKind(data["kind"])
    except ValueError:
        raise SpecError(f"{where}{path}.kind: {data['kind']!r} is not a link kind; allowed: "
                        f"{', '.join(k.value for k in LinkKind)}.") from None
    try:
        topology = LinkTopology(data.get("topology", "switch"))
    except ValueError:
        raise SpecError(f"{where}{path}.topology: {data['topology']!r} is not a topology; allowed: "
                        f"{', '.join(t.value for t in LinkTopology)}.") from None
    if topology is LinkTopology.MESH and "peers" not in data:
        raise SpecError(f"{where}{path}.peers: a mesh link needs the number of devices each one links to directly.")
    peers = _positive_int(data.get("peers", 0), f"{where}{path}.peers", 1 if "peers" in data else 0)
    return LinkSpec(name=name, kind=kind, bandwidth_bytes_per_s=q(data, "bandwidth", Dim.BYTES_PER_S, path),
                    latency_s=q(data, "latency", Dim.SECONDS, path, default=0.0),
                    energy_j_per_byte=q(data, "energy", Dim.J_PER_BYTE, path, default=0.0),
                    topology=topology, peers=peers)


_EFF_FIELDS = {f: f for f in Efficiency.__dataclass_fields__ if f != "extra"}
_EFF_YAML = {(f[:-2] if f.endswith("_s") else f[:-6] if f.endswith("_bytes") else f): f for f in _EFF_FIELDS}


def _efficiency(q: _Q, data: Any, where: str) -> Efficiency:
    data = check_keys(data, tuple(_EFF_YAML) + ("extra",), f"{where}efficiency", SpecError)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "extra":
            extra = check_keys(value, _any(value), f"{where}efficiency.extra", SpecError)
            values["extra"] = MappingProxyType({k: _extra_value(q, extra, k, "efficiency.extra") for k in extra})
            continue
        field_name = _EFF_YAML[key]
        if field_name.endswith("_s"):
            values[field_name] = q(data, key, Dim.SECONDS, "efficiency", allow_zero=True)
        elif field_name.endswith("_bytes"):
            values[field_name] = q(data, key, Dim.BYTES, "efficiency")
        elif isinstance(Efficiency.__dataclass_fields__[field_name].default, Enum):
            kind = type(Efficiency.__dataclass_fields__[field_name].default)
            try:
                values[field_name] = kind(value)
            except ValueError:
                raise SpecError(f"{where}efficiency.{key}: {value!r} is not one of "
                                f"{', '.join(k.value for k in kind)}.") from None
        elif isinstance(Efficiency.__dataclass_fields__[field_name].default, bool):
            if not isinstance(value, bool):
                raise SpecError(f"{where}efficiency.{key}: {value!r} must be true or false.")
            values[field_name] = value
        elif isinstance(Efficiency.__dataclass_fields__[field_name].default, int):
            values[field_name] = _positive_int(value, f"{where}efficiency.{key}", 1)
        else:
            v = q(data, key, Dim.DIMENSIONLESS, "efficiency")
            if "fraction" in key and not 0 < v <= 1:
                raise SpecError(f"{where}efficiency.{key}: {value!r} must be a fraction in (0, 1].")
            values[field_name] = v
    return Efficiency(**values)


def _extra_value(q: _Q, data: Mapping, key: str, path: str = "extra") -> float:
    """Free-form device parameters: numbers, or quantities converted to SI base units."""
    value = data[key]
    if isinstance(value, Mapping):
        q.sources[f"{path}.{key}"] = str(value.get("source", ""))
        value = value.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        from ..units import parse_base

        try:
            return parse_base(value.strip())
        except Exception:
            pass
    raise SpecError(f"{q.where}{path}.{key}: {value!r} is neither a number nor a quantity with a unit.")


def _node(raw: Mapping, where: str, path: Path, device: DeviceSpec | None = None) -> NodeSpec:
    name, version, aliases, description, source = _common(raw, where, _TOP_NODE)
    q = _Q(where)
    if "device" not in raw or "device_count" not in raw:
        raise SpecError(f"{where}a node needs 'device' (a shipped device name) and 'device_count'.")
    ref = str(raw["device"])     # a shipped name, or a YAML path (relative to this file, as extends:)
    if device is None:
        device = load_hw(_device_ref(path, ref))
    if not isinstance(device, DeviceSpec):
        raise SpecError(f"{where}device: '{raw['device']}' is a node, expected a device.")
    links = check_keys(raw.get("links", {}), ("intra", "host", "network"), f"{where}links", SpecError)
    host = check_keys(raw.get("host", {}), ("memory", "memory_bandwidth", "cpu", "cpu_count", "power"), f"{where}host", SpecError)
    drives = check_keys(raw.get("drives", {}), ("device", "count"), f"{where}drives", SpecError)
    econ = check_keys(raw.get("economics", {}), ("price",), f"{where}economics", SpecError)
    cpu = load_hw(str(host["cpu"])) if "cpu" in host else None
    drive = load_hw(str(drives["device"])) if "device" in drives else None
    cpu_count = _positive_int(host.get("cpu_count", 1), f"{where}host.cpu_count")
    network, nics = links.get("network"), 0.0
    if isinstance(network, Mapping) and "nics" in network:     # the node's NIC count (default: one per device)
        nics = network["nics"]
        if isinstance(nics, bool) or not isinstance(nics, (int, float)) or not 0 < nics < math.inf:
            raise SpecError(f"{where}links.network.nics: expected the node's number of NICs (a number > 0), "
                            f"got {nics!r}.")
        network = {k: v for k, v in network.items() if k != "nics"}
    return NodeSpec(
        name=name, description=description, source=source, version=version, aliases=aliases,
        device=device, device_count=_positive_int(raw["device_count"], f"{where}device_count", 1),
        intra_link=_link(q, "intra", links["intra"], "links.intra", where) if "intra" in links else None,
        host_link=_link(q, "host", links["host"], "links.host", where) if "host" in links else None,
        network=_link(q, "network", network, "links.network", where) if "network" in links else None,
        network_nics=float(nics),
        host_memory_bytes=q(host, "memory", Dim.BYTES, "host", default=0.0),
        host_memory_bandwidth_bytes_per_s=q(host, "memory_bandwidth", Dim.BYTES_PER_S, "host", default=0.0),
        host_cpu=cpu, drives=(drive,) if drive else (),
        drive_count=_positive_int(drives.get("count", 0), f"{where}drives.count"),
        host_power_w=q(host, "power", Dim.WATTS, "host", default=0.0) + (cpu.tdp_w * cpu_count if cpu else 0.0),
        price_usd=q(econ, "price", Dim.USD, "economics", default=0.0),
        sources=MappingProxyType(dict(q.sources)), path=str(path),
    )
