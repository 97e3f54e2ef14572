"""The user-facing error hierarchy.

Every error a user can cause with bad input is a :class:`SimhwError`: one or two sentences that
say what was wrong, where (file, YAML path, field) and what is allowed. The CLI prints the message
and exits with code 2; no traceback reaches the user.
"""


class SimhwError(Exception):
    """Base class of all errors caused by user input."""


class SimhwWarning(UserWarning):
    """Input simhw reads but only approximates (e.g. an architecture feature it does not model); the
    CLI prints each once as ``simhw: warning: ...``."""


class SpecError(SimhwError):
    """A hardware spec (hwspecs/*.yaml or a --hw path) is missing, malformed or inconsistent."""


class WorkloadError(SimhwError):
    """A workload (YAML, model config, --set override) is missing, malformed or inconsistent."""


class TraceError(SimhwError):
    """A PyTorch profiler trace cannot be read or lacks what is needed."""


class PlanError(SimhwError):
    """A schedule plan names items the workload does not have or is malformed."""


class InfeasibleError(SimhwError):
    """No schedule fits the given memory or time limits."""


class DataError(SimhwError):
    """A measurement file (validate / calibrate) cannot be read."""


class MissingPeakError(SpecError, KeyError):
    """A spec has no compute peak for a data type an op needs (nor a wider format). Also a
    KeyError, so callers that price row by row can mark the row unpriced and go on."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingMemoryError(SpecError, ValueError):
    """A spec has no memory level where an op needs main memory. Also a ValueError, so callers
    that price row by row can mark the row unpriced and go on."""
