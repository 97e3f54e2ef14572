"""Megatron-LM pipeline layouts: what each model chunk of a pipeline holds.

Megatron-Core's ``--pipeline-model-parallel-layout`` (Megatron-Bridge's
``pipeline_model_parallel_layout``) names, chunk by chunk, the pieces each virtual pipeline
stage runs: ``E`` the embedding, ``t`` a transformer layer, ``m`` a multi-token prediction module,
``L`` the output layer and loss; ``|`` ends a chunk, ``X*n`` repeats a piece and ``(...)*n`` a
group. DeepSeek-V3 on 8 stages x 4 chunks runs ``Et*3|(tt|)*29m|L``: the embedding and three layers
on the first chunk, two layers on each of the next 29, the MTP module and the loss on chunks of
their own. Chunk c runs on device c mod pp (Narayanan et al. 2021 §2.2), as in
workload/spec.py device_layers.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum


class Piece(Enum):
    EMBEDDING = "E"
    LAYER = "t"
    MTP = "m"
    LOSS = "L"


_GROUP = re.compile(r"\(([^()]*)\)\*(\d+)")
_SINGLE = re.compile(r"([EtmL])\*(\d+)")


@dataclass(frozen=True)
class Layout:
    """The pieces of each model chunk, in pipeline order (chunk c on device c mod pp)."""

    chunks: tuple[tuple[Piece, ...], ...]

    def count(self, piece: Piece) -> int:
        return sum(c.count(piece) for c in self.chunks)

    def device_layers(self, pp: int) -> tuple[tuple[int, ...], ...]:
        """The transformer layers each of ``pp`` devices holds, numbered in pipeline order."""
        out: list[list[int]] = [[] for _ in range(pp)]
        i = 0
        for c, chunk in enumerate(self.chunks):
            n = chunk.count(Piece.LAYER)
            out[c % pp].extend(range(i, i + n))
            i += n
        return tuple(tuple(d) for d in out)

    def chunk_starts(self) -> tuple[int, ...]:
        """The first layer of each chunk, in pipeline order."""
        out, i = [], 0
        for chunk in self.chunks:
            out.append(i)
            i += chunk.count(Piece.LAYER)
        return tuple(out)

    def device_of(self, piece: Piece, pp: int) -> int:
        """The device that runs ``piece`` (the first chunk holding it)."""
        return next(c % pp for c, chunk in enumerate(self.chunks) if piece in chunk)


def format_layout(chunks: list[tuple[bool, int, int, bool]]) -> str:
    """The layout string of chunks given as (embedding, layers, MTP modules, loss), runs of equal
    chunks written ``(...|)*n`` (parse_layout reads it back)."""
    texts = [("E" if e else "") + (f"t*{n}" if n > 1 else "t" * n) + "m" * mtp + ("L" if loss else "")
             for e, n, mtp, loss in chunks]
    out, i = [], 0
    while i < len(texts):
        j = i
        while j + 1 < len(texts) and texts[j + 1] == texts[i]:
            j += 1
        run = j - i + 1
        last = j == len(texts) - 1
        if run > 2 and not last:
            out.append(f"({texts[i]}|)*{run}")
        elif run > 2:
            out.append(f"({texts[i]}|)*{run - 1}{texts[i]}")
        else:
            out.append("|".join(texts[i:j + 1]) + ("" if last else "|"))
        i = j + 1
    return "".join(out)


def _expand(text: str) -> str:
    while True:
        new = _GROUP.sub(lambda g: g.group(1) * int(g.group(2)), text)
        new = _SINGLE.sub(lambda g: g.group(1) * int(g.group(2)), new)
        if new == text:
            return text
        text = new


@functools.lru_cache(maxsize=256)
def parse_layout(text: str, chunks: int, layers: int, mtp: int) -> Layout:
    """The layout ``text`` for ``chunks`` (pp x interleave) model chunks of a model of ``layers``
    layers and ``mtp`` multi-token prediction modules; ValueError saying what is wrong."""
    flat = _expand(re.sub(r"\s+", "", text))
    bad = sorted(set(flat) - set("EtmL|"))
    if bad:
        raise ValueError(f"{text!r} has {''.join(bad)!r}, which is not a piece; use E (embedding), t (layer), "
                         f"m (multi-token prediction module), L (loss), | between chunks, X*n and (...)*n")
    parts = flat.split("|")
    if len(parts) != chunks:
        raise ValueError(f"{text!r} names {len(parts)} chunks but pp x interleave = {chunks}")
    layout = Layout(tuple(tuple(Piece(ch) for ch in part) for part in parts))
    if layout.count(Piece.LAYER) != layers:
        raise ValueError(f"{text!r} places {layout.count(Piece.LAYER)} layers (t) but the model has {layers}")
    if layout.count(Piece.MTP) != mtp:
        raise ValueError(f"{text!r} places {layout.count(Piece.MTP)} multi-token prediction modules (m) but the "
                         f"workload runs {mtp} (model.mtp_layers, in training only)")
    if layout.chunks[0][:1] != (Piece.EMBEDDING,) or layout.count(Piece.EMBEDDING) != 1:
        raise ValueError(f"{text!r} must start with the embedding (E), once")
    if layout.chunks[-1][-1:] != (Piece.LOSS,) or layout.count(Piece.LOSS) != 1:
        raise ValueError(f"{text!r} must end with the loss (L), once")
    return layout
