"""Cost model: per-op time/energy (roofline.py, comm.py), memory (memory.py), step totals (estimate.py)."""
