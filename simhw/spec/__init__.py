"""Hardware specs: frozen dataclasses (model.py) loaded from YAML (load.py)."""
from .model import (DType, DeviceKind, DeviceSpec, Efficiency, LinkKind, LinkSpec, MemoryLevel,
                    NodeSpec)
from .load import available_hw, load_hw

__all__ = ["DType", "DeviceKind", "DeviceSpec", "Efficiency", "LinkKind", "LinkSpec", "MemoryLevel",
           "NodeSpec", "available_hw", "load_hw"]
