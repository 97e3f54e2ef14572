"""One training step of a small decoder-only transformer under torch.profiler (Chrome trace kept).

The trace (``train_step_trace.json``) can be re-costed on other hardware with
``simhw estimate train_step_trace.json --hw <name>``.
"""
from __future__ import annotations

from pathlib import Path


def build_model(layers: int = 4, hidden: int = 1024, heads: int = 16, vocab: int = 32000, checkpoint: bool = False,
                arch: str = "gpt", ffn: int = 0):
    """The decoder; ``checkpoint``: each block under torch.utils.checkpoint (its activations are
    recomputed in backward, only its input kept). ``arch``: ``gpt`` (LayerNorm, GELU MLP of
    4 x hidden) or ``llama`` (RMSNorm, SwiGLU MLP of ``ffn``; no rotary embedding)."""
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            norm = nn.RMSNorm if arch == "llama" else nn.LayerNorm
            width = ffn or 4 * hidden
            self.norm1 = norm(hidden)
            self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
            self.proj = nn.Linear(hidden, hidden, bias=False)
            self.norm2 = norm(hidden)
            self.up = nn.Linear(hidden, (2 if arch == "llama" else 1) * width, bias=False)
            self.down = nn.Linear(width, hidden, bias=False)

        def mlp(self, x):
            if arch == "llama":
                gate, up = self.up(x).chunk(2, dim=-1)
                return self.down(torch.nn.functional.silu(gate) * up)
            return self.down(torch.nn.functional.gelu(self.up(x)))

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, heads, hidden // heads).unbind(2)
            a = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                                 v.transpose(1, 2), is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, s, hidden))
            return x + self.mlp(self.norm2(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, hidden)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.norm = nn.RMSNorm(hidden) if arch == "llama" else nn.LayerNorm(hidden)
            self.head = nn.Linear(hidden, vocab, bias=False)

        def forward(self, tokens):
            x = self.emb(tokens)
            for blk in self.blocks:
                x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False) if checkpoint else blk(x)
            return self.head(self.norm(x))

    return Model()


def measure(out_dir: Path, dtype: str = "bf16", batch: int = 4, seq: int = 1024, quick: bool = False,
            device: str = "cuda", smoke: bool = False) -> dict:
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    from common import synchronize, torch_dtype

    torch.manual_seed(0)
    shape = dict(layers=1, hidden=128, heads=4, vocab=1000) if smoke else dict(layers=2 if quick else 4)
    if smoke:
        batch, seq = 2, 64
    vocab = shape.get("vocab", 32000)
    model = build_model(**shape).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, vocab, (batch, seq), device=device)

    def step():
        with torch.autocast(device, dtype=torch_dtype(dtype)):
            logits = model(tokens)
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), tokens.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    synchronize(device)
    t0 = time.perf_counter()
    step()
    synchronize(device)
    wall = time.perf_counter() - t0
    trace = Path(out_dir) / "train_step_trace.json"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        step()
        synchronize(device)
    prof.export_chrome_trace(str(trace))
    params = sum(p.numel() for p in model.parameters())
    return {"train_step_s": wall, "trace": trace.name, "batch": batch, "seq": seq, "dtype": dtype,
            "parameters": params, "layers": len(model.blocks)}
