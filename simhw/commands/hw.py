"""``simhw hw list`` and ``simhw hw show NAME``: the shipped hardware registry, every value with its
unit and its source."""
from __future__ import annotations

from .common import add_list_show, write_output


def register(sub) -> None:
    add_list_show(sub, "hw", "list shipped hardware specs or show one with units and sources",
                  "Browse the hardware registry (hwspecs/*.yaml).",
                  "every shipped device and node: name, kind, aliases, description",
                  "every value of one spec with its unit and source",
                  "a shipped name or alias (simhw hw list) or a spec YAML path", run)


def run(args) -> int:
    import json

    from ..spec.load import available_hw, load_hw

    action = getattr(args, "hw_command", None)
    if action == "list":
        rows = [_list_row(r) for r in available_hw()]
        if args.format == "json":
            text = json.dumps([dict(zip(("name", "kind", "aliases", "description"), r)) for r in rows], indent=2)
        else:
            text = _table([list(r) for r in rows], ["name", "kind", "aliases", "description"])
        write_output(text, args.output)
        return 0
    if action == "show":
        spec = load_hw(args.name)
        header, rows = describe(spec)
        if args.format == "json":
            text = json.dumps({**header, "values": [
                {"field": f, "value": si_value, "unit": unit, "text": shown, "source": src}
                for f, shown, si_value, unit, src in rows]}, indent=2)
        else:
            text = _show_table(header, rows)
        write_output(text, args.output)
        return 0
    args.hw_parser.print_help()
    return 2


def _list_row(row) -> tuple[str, str, str, str]:
    name, kind, description, aliases = (list(row) + ["", "", "", ""])[:4]
    return str(name), str(kind), str(aliases), str(description)


# Describing a spec --------------------------------------------------------------------------------

_INT_DTYPES = ("int8", "int4")
_YEAR_S = 365.25 * 86400.0


def describe(spec) -> tuple[dict, list[tuple[str, str, float | str | None, str, str]]]:
    """Header fields and rows ``(field, human text, SI value, SI unit, source)`` of a spec."""
    from ..spec.model import NodeSpec

    kind = "node" if isinstance(spec, NodeSpec) else spec.kind.value
    header = {"name": spec.name, "kind": kind, "aliases": list(spec.aliases), "description": spec.description,
              "version": spec.version, "source": spec.source, "path": spec.path}
    rows: list = []

    def add(field: str, value, unit: str, shown: str | None = None, source: str | None = None) -> None:
        src = source if source is not None else spec.sources.get(field, spec.source)
        rows.append((field, shown if shown is not None else human(value, unit), value, unit, src))

    if isinstance(spec, NodeSpec):
        _describe_node(spec, add)
    else:
        _describe_device(spec, add)
    return header, rows


def _describe_device(spec, add) -> None:
    if spec.compute_units:
        add("compute.units", float(spec.compute_units), "", shown=str(spec.compute_units))
    if spec.clock_hz:
        add("compute.clock", spec.clock_hz, "Hz")
    if spec.sparsity_factor != 1.0:
        add("compute.sparsity_factor", spec.sparsity_factor, "", shown=f"{_num(spec.sparsity_factor)}x (peaks stored dense)")
    for dtype, value in spec.peak_flop_per_s.items():
        add(f"compute.peak.{dtype.value}", value, "OP/s" if dtype.value in _INT_DTYPES else "FLOP/s")
    for level in spec.memory:
        base = f"memory.{level.name}"
        add(f"{base}.capacity", level.capacity_bytes, "B")
        add(f"{base}.bandwidth", level.bandwidth_bytes_per_s, "B/s")
        if level.energy_j_per_byte:
            add(f"{base}.energy", level.energy_j_per_byte, "J/B", shown=_energy_per_byte(level.energy_j_per_byte))
        if level.latency_s:
            add(f"{base}.latency", level.latency_s, "s")
    for link in spec.links:
        _describe_link(f"links.{link.name}", link, add)
    if spec.tdp_w:
        add("power.tdp", spec.tdp_w, "W")
    if spec.idle_w:
        add("power.idle", spec.idle_w, "W")
    if spec.active_w:
        add("power.active", spec.active_w, "W")
    for dtype, value in spec.energy_j_per_flop.items():
        add(f"energy.flop.{dtype.value}", value, "J/OP" if dtype.value in _INT_DTYPES else "J/FLOP")
    if spec.hot_flop_factor != 1.0:
        add("energy.hot_flop_factor", spec.hot_flop_factor, "",
            shown=f"{_num(spec.hot_flop_factor)}x (sustained die temperature)")
    if spec.hot_time_constant_s:
        add("energy.hot_time_constant", spec.hot_time_constant_s, "s",
            shown=f"{_num(spec.hot_time_constant_s)} s (a die held at its limit warms)")
    if spec.transport_j_per_byte:
        add("energy.transport", spec.transport_j_per_byte, "J/B", shown=_energy_per_byte(spec.transport_j_per_byte))
    if spec.price_usd:
        add("economics.price", spec.price_usd, "USD", shown=f"{_num(spec.price_usd)} USD")
    if spec.cloud_usd_per_s:
        add("economics.cloud", spec.cloud_usd_per_s, "USD/s", shown=f"{_num(spec.cloud_usd_per_s * 3600)} USD/h")
    if spec.lifespan_s:
        add("economics.lifespan", spec.lifespan_s, "s", shown=f"{_num(spec.lifespan_s / _YEAR_S)} year")
    if spec.die_area_m2:
        add("silicon.die_area", spec.die_area_m2, "m^2", shown=f"{_num(spec.die_area_m2 * 1e6)} mm^2")
    if spec.process_nm:
        add("silicon.process", spec.process_nm * 1e-9, "m", shown=f"{_num(spec.process_nm)} nm")
    if spec.embodied_kgco2e:
        add("silicon.embodied", spec.embodied_kgco2e, "kg", shown=f"{_num(spec.embodied_kgco2e)} kg CO2e")
    if spec.mass_kg:
        add("silicon.mass", spec.mass_kg, "kg", shown=f"{_num(spec.mass_kg)} kg")
    raw_eff = _raw_section(spec.path, "efficiency")
    if raw_eff:
        _describe_efficiency(spec, add, raw_eff)
    raw_extra = _raw_section(spec.path, "extra")
    for key, value in spec.extra.items():
        raw = raw_extra.get(key)
        if isinstance(raw, dict):
            raw = raw.get("value")
        shown = str(raw) if raw is not None else _num(float(value)) + " (SI)"
        add(f"extra.{key}", value, "SI", shown=shown)


def _describe_link(base: str, link, add) -> None:
    add(f"{base}.bandwidth", link.bandwidth_bytes_per_s, "B/s",
        shown=f"{human(link.bandwidth_bytes_per_s, 'B/s')} per direction ({link.kind.value})")
    if link.latency_s:
        add(f"{base}.latency", link.latency_s, "s")
    if link.energy_j_per_byte:
        add(f"{base}.energy", link.energy_j_per_byte, "J/B", shown=_energy_per_byte(link.energy_j_per_byte))
    if link.peers:
        add(f"{base}.topology", None, "", shown=f"{link.topology.value}, {link.peers} peers (a group of g devices "
                                               f"gets (g - 1) / {link.peers} of the bandwidth)")


def _describe_efficiency(spec, add, raw: dict) -> None:
    """Every constant of the efficiency model; those the spec does not set show as defaults."""
    from dataclasses import fields
    from enum import Enum

    from ..spec.model import Efficiency

    eff = spec.efficiency
    for f in fields(Efficiency):
        if f.name == "extra":
            continue
        key = f.name[:-2] if f.name.endswith("_s") else f.name[:-6] if f.name.endswith("_bytes") else f.name
        value = getattr(eff, f.name)
        field = f"efficiency.{key}"
        source = None if key in raw else "simhw default (not set in the spec)"
        if f.name.endswith("_s"):
            add(field, value, "s", source=source)
        elif f.name.endswith("_bytes"):
            add(field, value, "B", source=source)
        elif isinstance(value, Enum):   # e.g. attention_kernel
            add(field, value.value, "", shown=value.value, source=source)
        elif isinstance(value, bool):   # e.g. gemm_epilogue_overlap
            add(field, value, "", shown=str(value).lower(), source=source)
        else:
            add(field, float(value), "", shown=_num(value), source=source)
    for key, value in eff.extra.items():
        add(f"efficiency.extra.{key}", value, "SI", shown=_num(float(value)))


def _describe_node(spec, add) -> None:
    add("device", None, "", shown=f"{spec.device.name} x {spec.device_count}")
    add("device_count", float(spec.device_count), "", shown=str(spec.device_count))
    for name, link in (("intra", spec.intra_link), ("host", spec.host_link), ("network", spec.network)):
        if link is not None:
            _describe_link(f"links.{name}", link, add)
    if spec.network is not None:
        add("links.network.nics", spec.nics, "", shown=f"{_num(spec.nics)}" + ("" if spec.network_nics else
                                                                             " (one per device)"))
    if spec.host_memory_bytes:
        add("host.memory", spec.host_memory_bytes, "B")
    if spec.host_memory_bandwidth_bytes_per_s:
        add("host.memory_bandwidth", spec.host_memory_bandwidth_bytes_per_s, "B/s")
    if spec.host_cpu is not None:
        add("host.cpu", None, "", shown=spec.host_cpu.name)
    if spec.host_power_w:
        src = spec.sources.get("host.power", spec.source)
        if spec.host_cpu is not None:
            src += f" (plus the TDP of each {spec.host_cpu.name} socket)"
        add("host.power", spec.host_power_w, "W", shown=f"{human(spec.host_power_w, 'W')} (incl. CPUs)", source=src)
    for drive in spec.drives:
        add("drives", None, "", shown=f"{drive.name} x {spec.drive_count}")
    if spec.price_usd:
        add("economics.price", spec.price_usd, "USD", shown=f"{_num(spec.price_usd)} USD")
    # Totals over the node (derived from the device spec, so their source is the device's).
    mem = spec.device.memory[0] if spec.device.memory else None
    if mem is not None:
        add("total.device_memory", mem.capacity_bytes * spec.device_count, "B",
            source=f"derived: {spec.device_count} x {spec.device.name} {mem.name} capacity")


def _raw_section(path: str, section: str) -> dict:
    """A top-level mapping as written in the YAML, merged over ``extends:`` parents (shallow).

    Used for what the loaded spec cannot tell: the units ``extra:`` values were written in, and
    which efficiency constants the spec sets rather than inherits from the defaults."""
    from pathlib import Path

    from ..errors import SimhwError
    from ..spec.load import resolve_hw_path
    from ..yamlio import read_yaml

    out: dict = {}
    seen: set = set()
    current = Path(path) if path else None
    chain = []
    try:
        while current is not None and current not in seen and current.exists():
            seen.add(current)
            raw = read_yaml(current, SimhwError)
            if not isinstance(raw, dict):
                break
            chain.append(raw.get(section) or {})
            parent = raw.get("extends")
            if parent is None:
                break
            local = current.parent / str(parent)
            current = local if local.exists() else resolve_hw_path(str(parent))
    except SimhwError:
        return {}
    for part in reversed(chain):
        if isinstance(part, dict):
            out.update(part)
    return out


# Human units ------------------------------------------------------------------------------------

_BIG = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_SMALL = ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))
_BINARY = ((2.0 ** 50, "Pi"), (2.0 ** 40, "Ti"), (2.0 ** 30, "Gi"), (2.0 ** 20, "Mi"), (2.0 ** 10, "Ki"))


def _num(value: float) -> str:
    """Up to 6 significant digits, no trailing zeros: 989.4, 2039, 0.796."""
    text = f"{value:.6g}"
    if "e" in text:
        return text
    return text.rstrip("0").rstrip(".") if "." in text else text


def _digits(text: str) -> int:
    return len(text.replace(".", "").replace("-", "").lstrip("0")) or 1


def human(value, unit: str) -> str:
    """An SI float in human units: ``human(3.12e14, "FLOP/s") -> "312 TFLOP/s"``, ``16 MiB``."""
    if value is None:
        return ""
    if value == 0:
        return f"0 {unit}".strip()
    magnitude = abs(value)
    if unit.startswith("J/") and magnitude < 1e-9:      # energies per FLOP or byte read best in pJ
        return f"{_num(value * 1e12)} p{unit}"
    if unit in ("FLOP/s", "OP/s") and 1e12 <= magnitude < 1e17:   # peaks read best in TFLOP/s
        return f"{_num(value / 1e12)} T{unit}"
    text = None
    for scale, prefix in _BIG:
        if magnitude >= scale:
            text = f"{_num(value / scale)} {prefix}{unit}"
            break
    if text is None:
        for scale, prefix in _SMALL:
            if magnitude >= scale * 0.9999995:
                text = f"{_num(value / scale)} {prefix}{unit}"
                break
    if text is None:
        text = f"{_num(value)} {unit}"
    if unit in ("B", "B/s") and magnitude >= 1024:
        for scale, prefix in _BINARY:
            if magnitude >= scale:
                binary = f"{_num(value / scale)} {prefix}{unit}"
                if _digits(binary.split()[0]) < _digits(text.split()[0]):
                    text = binary
                break
    return text


def _energy_per_byte(j_per_byte: float) -> str:
    return f"{human(j_per_byte, 'J/B')} ({human(j_per_byte / 8, 'J/bit')})"


# Tables -------------------------------------------------------------------------------------------

def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(header)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return "\n".join(lines)


def _show_table(header: dict, rows) -> str:
    top = [f"{header['name']} ({header['kind']}): {header['description']}",
           f"aliases: {', '.join(header['aliases']) or '-'}",
           f"version: {header['version']}",
           f"source:  {header['source']}",
           f"file:    {header['path']}",
           "", ""]
    body = [[f, shown, "(spec source)" if src == header["source"] else src] for f, shown, _, _, src in rows]
    return "\n".join(top) + _table(body, ["field", "value", "source"])
