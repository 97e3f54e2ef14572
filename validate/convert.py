#!/usr/bin/env python
"""Convert a public GPU measurement set into simhw's measurement CSV.

    python validate/convert.py SOURCE_DIR OUT.csv --source aiconfigurator|vidur|llmcompass

SOURCE_DIR is the source's folder as fetched from the repository named in validate/datasets.yaml
(or its copy under ../shared/validation/<source>/); the converter finds its files by name.
Then: ``simhw validate OUT.csv --hw a100`` (or ``--hw dgx-a100`` for multi-node collectives).
A folder with several GPUs' files (a100/, h100/) needs ``--gpu h100`` and then ``--hw h100``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from simhw.commands.common import write_bytes_atomic
    from simhw.errors import SimhwError
    from simhw.validation import SOURCES, convert

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--gpu", help="keep the files below this GPU's folders (a100, h100, ...); required when "
                                 "SOURCE_DIR holds several GPUs' measurements")
    p.add_argument("--no-custom-allreduce", action="store_true",
                   help="aiconfigurator: leave out vLLM's custom (non-NCCL) all-reduce rows")
    p.add_argument("--no-send-recv", action="store_true", help="vidur: leave out the send_recv rows")
    p.add_argument("--no-legacy-attention", action="store_true", help="vidur: leave out the 2024 attention table")
    args = p.parse_args(argv)
    options = {}
    if args.source == "aiconfigurator":
        options["custom_allreduce"] = not args.no_custom_allreduce
    if args.source == "vidur":
        options["send_recv"] = not args.no_send_recv
        options["legacy_attention"] = not args.no_legacy_attention
    try:
        df = convert(args.source, args.source_dir, gpu=args.gpu, **options)
        write_bytes_atomic(args.out, df.to_csv(index=False).encode("utf-8"))
    except SimhwError as exc:
        sys.stderr.write(f"convert: error: {exc}\n")
        return 2
    counts = df["kind"].value_counts().to_dict()
    print(f"{args.out}: {len(df)} rows ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
