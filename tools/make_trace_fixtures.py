"""Regenerate the small CPU PyTorch profiler traces in tests/fixtures/traces/ (needs torch==2.13.0).

    python tools/make_trace_fixtures.py [OUT_DIR]

Each fixture is a Kineto Chrome-trace JSON written by ``torch.profiler.profile(...).export_chrome_trace``
and gzipped (each well under 300 KB). Sizes are kept tiny so the profiles record every op but
run in a second or two on a laptop CPU:

- ``cpu_gpt_block_train.json.gz``: a GPT block (LayerNorm, QKV Linear, causal SDPA, proj, LayerNorm,
  GELU MLP) forward + backward + AdamW (foreach) step, fp32, ``record_shapes`` and ``profile_memory``.
- ``cpu_llama_bf16_train.json.gz``: embedding, RMSNorm, SiLU-gated MLP, lm head, cross entropy,
  under CPU autocast bf16, forward + backward + SGD (foreach) step.
- ``cpu_convnet_train.json.gz``: Conv2d + BatchNorm + ReLU + MaxPool + Linear, cross entropy, fwd+bwd+SGD.
- ``cpu_matmul_noshapes.json.gz``: ``c = a @ b; a = tanh(c)`` loop profiled *without* record_shapes
  (for the "shapes not recorded" path).
"""
from __future__ import annotations

import gzip
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = Path(__file__).resolve().parents[1]


class Block(nn.Module):
    def __init__(self, d=128, heads=4):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyLlama(nn.Module):
    def __init__(self, vocab=512, d=128, ffn=256):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.norm = nn.RMSNorm(d)
        self.gate, self.up, self.down = nn.Linear(d, ffn, bias=False), nn.Linear(d, ffn, bias=False), \
            nn.Linear(ffn, d, bias=False)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.emb(ids)
        h = self.norm(x)
        x = x + self.down(F.silu(self.gate(h)) * self.up(h))
        return self.head(x)


def _profile(path: Path, step, *, shapes=True, memory=True) -> None:
    step()  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=shapes, profile_memory=memory) as prof:
        step()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(raw))
        text = raw.read_text().replace(str(raw), path.name[:-3])     # traceName: no temporary path
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(text.encode())
    print(f"{path}: {path.stat().st_size:,} B gz")


def gpt_block_train(out: Path) -> None:
    torch.manual_seed(0)
    model = Block()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    x = torch.randn(2, 64, 128)

    def step():
        with record_function("fwd"):
            loss = model(x).float().pow(2).mean()
        with record_function("bwd"):
            loss.backward()
        with record_function("opt"):
            opt.step()
            opt.zero_grad(set_to_none=True)
    _profile(out / "cpu_gpt_block_train.json.gz", step)


def llama_bf16_train(out: Path) -> None:
    torch.manual_seed(0)
    model = TinyLlama()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, foreach=True)
    ids = torch.randint(0, 512, (2, 32))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids)
        loss = F.cross_entropy(logits.float().view(-1, 512), ids.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _profile(out / "cpu_llama_bf16_train.json.gz", step)


def convnet_train(out: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, foreach=True)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))

    def step():
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _profile(out / "cpu_convnet_train.json.gz", step)


def matmul_noshapes(out: Path) -> None:
    a, b = torch.randn(128, 128), torch.randn(128, 128)

    def step():
        x = a
        for i in range(5):
            with record_function(f"iter{i}"):
                x = torch.tanh(x @ b)
    _profile(out / "cpu_matmul_noshapes.json.gz", step, shapes=False, memory=False)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "tests" / "fixtures" / "traces"
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    for make in (gpt_block_train, llama_bf16_train, convnet_train, matmul_noshapes):
        make(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
