"""Speed and memory of simhw's trace loader on a large synthetic trace (not a timed test).

    python benchmarks/bench_trace.py [--mb 200] [--source TRACE.json.gz] [--keep]

Builds a ~``--mb`` MB plain-JSON Kineto trace in /tmp by replicating the events of a real trace
(default: ../shared/validation/traces/hta_sampled_training_rank0_trace.json.gz, else a fixture),
shifting timestamps and correlation ids per copy so links stay unique. Then, each in a fresh
subprocess (best of ``--repeat`` runs), it measures wall time (MB/s of JSON text) and peak RSS (``resource.getrusage``
``ru_maxrss``, whole process, and its growth over the interpreter after imports) of:

- ``json.load``            the stdlib baseline: the whole document as Python objects;
- ``simhw load_trace``     streaming parse into compact records (the loader);
- ``simhw load+analyze``   loader plus call trees, kernel links and FLOPs (what estimate needs);
- ``HTA parse_trace_dataframe`` (holistictraceanalysis, default JSON backend), when importable
  (set HTA_PYTHON to a Python that has it, e.g. a venv).
Prints a table. Targets: >= 50 MB/s and peak RSS <= 2x the file size.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = [ROOT.parent / "shared" / "validation" / "traces" / "hta_sampled_training_rank0_trace.json.gz",
                   ROOT / "tests" / "fixtures" / "traces" / "cpu_gpt_block_train.json.gz"]

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
mode, path = sys.argv[1], sys.argv[2]
if mode == "json":
    pass
elif mode.startswith("simhw"):
    from simhw.trace.reader import load_trace
    from simhw.trace.link import analyze
else:
    import logging; logging.disable(logging.WARNING)
    from hta.common.trace_parser import parse_trace_dataframe
    from hta.configs.parser_config import ParserConfig
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
if mode == "json":
    with open(path, "rb") as fh:
        doc = json.load(fh)
    n = len(doc["traceEvents"])
elif mode == "simhw":
    t = load_trace(path); n = t.events
elif mode == "simhw-analyze":
    t = load_trace(path); a = analyze(t); n = t.events
else:
    meta, df, sym = parse_trace_dataframe(path, ParserConfig.get_default_cfg()); n = len(df)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": dt, "peak_rss": peak, "base_rss": base, "events": n}}))
"""


def build(source: Path, target_mb: float, out: Path) -> int:
    """Write a trace of about ``target_mb`` MB by replicating ``source``'s events; returns bytes."""
    with gzip.open(source, "rt") if source.suffix == ".gz" else open(source) as fh:
        doc = json.load(fh)
    events = doc.pop("traceEvents")
    head = {k: v for k, v in doc.items()}
    xs = [e for e in events if e.get("ph") != "M"]
    meta = [e for e in events if e.get("ph") == "M"]
    span = max((e.get("ts", 0) + e.get("dur", 0) for e in xs), default=0) - min((e.get("ts", 0) for e in xs), default=0)
    one = len(json.dumps(xs)) + 1
    copies = max(1, int(target_mb * 1e6 // one))
    with open(out, "w") as fh:
        fh.write("{\n")
        for k, v in head.items():
            fh.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        fh.write('  "traceEvents": [\n')
        first = True
        for e in meta:
            fh.write(("" if first else ",\n") + "  " + json.dumps(e))
            first = False
        for c in range(copies):
            shift = c * (span + 1000)
            for e in xs:
                e2 = dict(e)
                if "ts" in e2:
                    e2["ts"] = e2["ts"] + shift
                args = e2.get("args")
                if isinstance(args, dict) and "correlation" in args:
                    args = dict(args)
                    args["correlation"] = args["correlation"] + c * 100_000_000
                    e2["args"] = args
                if e2.get("ph") in ("s", "f") and "id" in e2:
                    e2["id"] = e2["id"] + c * 100_000_000
                fh.write(("" if first else ",\n") + "  " + json.dumps(e2))
                first = False
        fh.write("\n  ]\n}\n")
    return out.stat().st_size


def measure(python: str, mode: str, path: Path) -> dict | None:
    proc = subprocess.run([python, "-c", _CHILD.format(root=str(ROOT)), mode, str(path)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.stderr.write(f"{mode}: failed\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0)
    ap.add_argument("--source", type=Path, default=next((p for p in DEFAULT_SOURCES if p.exists()), None))
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--repeat", type=int, default=2, help="runs per loader; the fastest is reported")
    args = ap.parse_args(argv)
    out = Path(tempfile.gettempdir()) / f"simhw_bench_trace_{int(args.mb)}mb.json"
    size = out.stat().st_size if out.exists() and args.keep else build(args.source, args.mb, out)
    print(f"trace: {out} ({size / 1e6:.1f} MB JSON, built from {args.source.name})")
    runs = [(sys.executable, "json", "json.load (baseline)"), (sys.executable, "simhw", "simhw load_trace"),
            (sys.executable, "simhw-analyze", "simhw load+analyze")]
    hta_py = os.environ.get("HTA_PYTHON", sys.executable)
    if subprocess.run([hta_py, "-c", "import hta"], capture_output=True).returncode == 0:
        runs.append((hta_py, "hta", "HTA parse_trace_dataframe"))
    else:
        print("HTA: not importable (pip install holistictraceanalysis, or set HTA_PYTHON)")
    print(f"{'loader':28s} {'events':>9s} {'seconds':>8s} {'MB/s':>7s} {'peak RSS MB':>12s} {'growth MB':>10s} "
          f"{'growth/file':>11s}")
    for python, mode, label in runs:
        results = [r for r in (measure(python, mode, out) for _ in range(max(1, args.repeat))) if r is not None]
        if not results:
            continue
        r = min(results, key=lambda x: x["seconds"])
        growth = r["peak_rss"] - r["base_rss"]
        print(f"{label:28s} {r['events']:9,d} {r['seconds']:8.2f} {size / 1e6 / r['seconds']:7.1f} "
              f"{r['peak_rss'] / 1e6:12.0f} {growth / 1e6:10.0f} {growth / size:11.2f}")
    if not args.keep:
        out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
