#!/usr/bin/env python
"""The row-wise kernels at shapes the fit of cost/rowwise.py never saw (rowwise.HOLDOUT: model
hidden sizes, FFN widths and vocabularies, non-power-of-two rows), and their CUPTI launch records:

    OUT=DIR python validate/gpu/rowwise_holdout.py

writes DIR/measurements-rowwise-holdout.csv, DIR/kernel_resources-holdout.csv, DIR/env-holdout.json.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import torch

    import common
    import rowwise

    if not torch.cuda.is_available():
        sys.stderr.write("rowwise_holdout: no CUDA GPU visible to PyTorch.\n")
        return 2
    out = Path(os.environ.get("OUT", "."))
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0)
    env = common.environment()
    rows = rowwise.measure(gpu=gpu, shapes=rowwise.HOLDOUT)
    common.write_rows(out / "measurements-rowwise-holdout.csv", rows)
    print(f"{len(rows)} rows", flush=True)
    res = rowwise.kernel_resources(gpu, shapes=rowwise.HOLDOUT)
    common.write_rows(out / "kernel_resources-holdout.csv", res, rowwise.RESOURCE_COLUMNS)
    env["kernel_timing"] = dict(common.STATS)
    common.write_json(out / "env-holdout.json", env)
    print(f"{len(res)} resource rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
