"""Host <-> device copies, pinned and pageable (kind=copy, op=h2d|d2h, bytes, pinned)."""
from __future__ import annotations

SIZES = (1 << 16, 1 << 20, 1 << 24, 1 << 28)


def measure(quick: bool = False, gpu: str = "") -> list[dict]:
    import torch

    from common import time_wall

    rows = []
    for nbytes in (SIZES[::2] if quick else SIZES):
        dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        for pinned in (True, False):
            host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
            for op, fn in (("h2d", lambda: dev.copy_(host, non_blocking=pinned)),
                           ("d2h", lambda: host.copy_(dev, non_blocking=pinned))):
                t = time_wall(fn)
                rows.append(dict(kind="copy", measured_s=t, op=op, bytes=nbytes, pinned=str(pinned).lower(),
                                 timing="wall", source="simhw-gpu",
                                 label=f"{op} {'pinned' if pinned else 'pageable'} {nbytes}B", gpu=gpu))
            del host
        del dev
    return rows
