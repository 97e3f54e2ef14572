#!/usr/bin/env python
"""Whole training steps of GPT-like decoders on one GPU, eager PyTorch: the end-to-end numbers a
`simhw estimate` of the same workload is checked against (simhw/validation/training.py own_rows).

    OUT=DIR python validate/gpu/train_e2e.py              # four sizes, about a minute on an H100
    OUT=DIR python validate/gpu/train_e2e.py --smoke --device cpu   # check the script on the host
    OUT=DIR python validate/gpu/train_e2e.py --trace 12x768  # that model only, plus one profiled step
    OUT=DIR python validate/gpu/train_e2e.py --checkpoint    # every block checkpointed (full recompute)
    OUT=DIR python validate/gpu/train_e2e.py --optimizer fused   # torch.optim.AdamW(fused=True)
    OUT=DIR python validate/gpu/train_e2e.py --compile --optimizer fused   # torch.compile'd model and loss

Each model is train_step.build_model's decoder (LayerNorm, causal SDPA, GELU MLP of 4x hidden, no
biases, no position embedding, untied head), trained with bf16 autocast and AdamW (PyTorch's
default foreach implementation, or fused with --optimizer fused; each block and the head with its
loss under torch.compile with --compile) on micro-batches of random tokens, fp32 cross-entropy; the
step time is the median of ``--steps`` steps after three warm-ups (host clock around a synchronised
step). Writes DIR/train_e2e[-llama][-checkpoint][-fusedadam][-compiled][-traced].csv (one row per
model: shape, options, parameters, step seconds, peak allocated bytes) and its env-*.json (with
nvidia-smi clocks and power after each model).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (layers, hidden, heads, micro_batch) at seq 2048, vocab 32000
MODELS = ((12, 768, 12, 8), (24, 1024, 16, 8), (24, 2048, 16, 4), (32, 2560, 20, 2))
SMOKE_MODELS = ((1, 64, 4, 2),)
COLUMNS = ("layers", "hidden", "heads", "vocab", "seq_len", "micro_batch", "activation_checkpointing", "arch", "ffn",
           "dtype", "optimizer_impl", "compiled", "parameters", "step_s", "peak_allocated_bytes", "gpu")


def swiglu_ffn(hidden: int) -> int:
    """Llama's SwiGLU width: 8/3 x hidden rounded up to a multiple of 256."""
    return -(-(8 * hidden // 3) // 256) * 256


def measure(models, seq: int, vocab: int, steps: int, device: str, gpu: str, env: dict,
            trace_dir: Path | None = None, checkpoint: bool = False, arch: str = "gpt", optimizer: str = "foreach",
            compiled: bool = False) -> list[dict]:
    import torch

    import common
    from train_step import build_model

    rows = []
    for layers, hidden, heads, batch in models:
        torch.manual_seed(0)
        ffn = swiglu_ffn(hidden) if arch == "llama" else 4 * hidden
        model = build_model(layers=layers, hidden=hidden, heads=heads, vocab=vocab, checkpoint=checkpoint,
                            arch=arch, ffn=ffn).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if optimizer == "fused" else {}))
        tokens = torch.randint(0, vocab, (batch, seq), device=device)

        def head_loss(x, tokens):
            logits = model.head(model.norm(x))
            return torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), tokens.view(-1))

        if compiled:        # regional: each block (one graph, reused) and the head with the loss
            for blk in model.blocks:
                blk.compile()
            head_loss = torch.compile(head_loss)

        def step():
            with torch.autocast(device, dtype=torch.bfloat16):
                x = model.emb(tokens)
                for blk in model.blocks:
                    x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False) if checkpoint else blk(x)
                loss = head_loss(x, tokens)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(3):
            step()
        common.synchronize(device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            common.synchronize(device)
            times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
        if trace_dir is not None:            # one more step under the profiler, shapes recorded
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
            with profile(activities=activities, record_shapes=True) as prof:
                step()
                common.synchronize(device)
            tag = ("-fusedadam" if optimizer == "fused" else "") + ("-compiled" if compiled else "")
            prof.export_chrome_trace(str(trace_dir / f"train_e2e_{layers}x{hidden}{tag}_trace.json"))
        rows.append(dict(layers=layers, hidden=hidden, heads=heads, vocab=vocab, seq_len=seq, micro_batch=batch,
                         activation_checkpointing=str(checkpoint).lower(), arch=arch, ffn=ffn, dtype="bf16",
                         optimizer_impl=optimizer, compiled=str(compiled).lower(), parameters=sum(p.numel() for p in model.parameters()),
                         step_s=statistics.median(times), peak_allocated_bytes=peak, gpu=gpu))
        if device == "cuda":
            env.setdefault("nvidia_smi_after", {})[f"{layers}x{hidden}"] = common.smi()
        print(f"{layers} x {hidden}: {rows[-1]['step_s'] * 1e3:.1f} ms, {peak / 2**30:.1f} GiB", flush=True)
        del model, opt, tokens, head_loss
        if compiled:
            torch._dynamo.reset()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="one tiny model: checks the script in seconds")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--checkpoint", action="store_true",
                   help="every block under torch.utils.checkpoint (full recompute); writes train_e2e-checkpoint.csv")
    p.add_argument("--arch", default="gpt", choices=("gpt", "llama"),
                   help="llama: RMSNorm and a SwiGLU MLP of 8/3 x hidden (writes train_e2e-llama.csv)")
    p.add_argument("--optimizer", default="foreach", choices=("foreach", "fused"),
                   help="fused: torch.optim.AdamW(fused=True), one kernel per tensor chunk (adds -fusedadam to the file name)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each block and the head with the loss (regional compilation: Inductor fuses "
                        "norms, casts, residual adds and the loss, forward and backward); adds -compiled to the file name")
    p.add_argument("--trace", default="", help="LAYERSxHIDDEN of the models to profile one more step of "
                                                 "(Chrome trace with shapes, e.g. 12x768)")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.stderr.write("train_e2e: PyTorch is not installed (pip install torch).\n")
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("train_e2e: no CUDA GPU visible to PyTorch (--smoke --device cpu checks the script).\n")
        return 2
    if args.device == "cpu" and not args.smoke:
        sys.stderr.write("train_e2e: --device cpu measures the host, not a GPU; it is only for --smoke.\n")
        return 2
    import common

    out = Path(os.environ.get("OUT", "."))
    out.mkdir(parents=True, exist_ok=True)
    env = common.environment()
    gpu = env.get("gpu", "") if args.device == "cuda" else "cpu (smoke run)"
    models, seq, vocab = (SMOKE_MODELS, 32, 1000) if args.smoke else (MODELS, 2048, 32000)
    if args.trace:
        wanted = {tuple(int(v) for v in t.split("x")) for t in args.trace.split(",")}
        models = tuple(m for m in models if m[:2] in wanted)
    rows = measure(models, seq, vocab, 2 if args.smoke else args.steps, args.device, gpu, env,
                   out if args.trace else None, args.checkpoint, args.arch, args.optimizer, args.compile)
    stem = ("train_e2e" + ("-llama" if args.arch == "llama" else "") + ("-checkpoint" if args.checkpoint else "")
            + ("-fusedadam" if args.optimizer == "fused" else "") + ("-compiled" if args.compile else "")
            + ("-traced" if args.trace else ""))     # a profiled run's steps are not the sweep's
    common.write_rows(out / f"{stem}.csv", rows, COLUMNS)
    common.write_json(out / f"env-{stem.replace('_', '-')}.json", env)
    print(f"wrote {out / (stem + '.csv')} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
