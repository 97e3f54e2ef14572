"""Run a Pyomo model through HiGHS and report how the solve ended, as a frozen value.

Every optimisation model in ``simhw.schedule`` is built by a pure ``build_model(data)`` and
solved here. The v2 Pyomo solver interface is used
(``pyomo.contrib.solver.common.factory.SolverFactory('highs')``, Pyomo >= 6.7) with
``raise_exception_on_nonoptimal_result=False`` and ``load_solutions=False`` so that a time limit
returns the incumbent and its MIP gap instead of raising; see ``shared/research/ecosystem.md`` §3.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass

from simhw.errors import SimhwError


class SolveStatus(str, enum.Enum):
    """How a solve ended."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"  # a feasible incumbent, not proven optimal; see SolveInfo.mip_gap
    INFEASIBLE = "infeasible"


class SolverLimitError(SimhwError):
    """The solver stopped at its time limit before it found any feasible solution."""


@dataclass(frozen=True)
class SolveInfo:
    """What HiGHS reported. ``objective_value`` and ``bound_value`` are in the model's scaled units."""

    status: SolveStatus
    objective_value: float | None
    bound_value: float | None
    mip_gap: float | None  # relative gap |objective - bound| / max(|objective|, 1e-12); 0 when optimal
    solve_time_s: float
    build_time_s: float = 0.0


def highs_available() -> bool:
    """True when Pyomo and highspy are importable and HiGHS reports itself available."""
    try:
        import highspy  # noqa: F401
        import pyomo.environ  # noqa: F401  (registers the v2 solvers with the factory)
        from pyomo.contrib.solver.common.factory import SolverFactory
    except ImportError:
        return False
    solver = SolverFactory("highs")
    return solver is not None and bool(solver.available())


def _relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-12)


def solve_model(model, *, time_limit_s: float, mip_gap: float, threads: int = 1,
                build_time_s: float = 0.0) -> SolveInfo:
    """Solve ``model`` with HiGHS; load the variable values when a feasible solution exists.

    Returns a :class:`SolveInfo`; an infeasible model gives ``SolveStatus.INFEASIBLE`` (the caller
    turns that into an :class:`~simhw.errors.InfeasibleError` naming the binding resource).
    Raises :class:`SolverLimitError` when the time limit ends the search with no incumbent.
    """
    import pyomo.environ  # noqa: F401
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

    solver = SolverFactory("highs")
    if solver is None or not solver.available():
        raise SolverLimitError("HiGHS is not available; install highspy (pip install highspy).")
    start = time.perf_counter()
    results = solver.solve(
        model,
        time_limit=float(time_limit_s),
        rel_gap=float(mip_gap),
        threads=int(threads),
        raise_exception_on_nonoptimal_result=False,
        load_solutions=False,
    )
    elapsed_s = time.perf_counter() - start
    term = results.termination_condition
    sol = results.solution_status
    if term in (TerminationCondition.provenInfeasible, TerminationCondition.infeasibleOrUnbounded,
                TerminationCondition.locallyInfeasible):
        return SolveInfo(SolveStatus.INFEASIBLE, None, None, None, elapsed_s, build_time_s)
    if sol not in (SolutionStatus.optimal, SolutionStatus.feasible):
        raise SolverLimitError(
            f"HiGHS stopped ({term.name}) after {elapsed_s:.1f} s without a feasible solution; "
            f"raise time_limit_s (was {time_limit_s} s).")
    results.solution_loader.load_vars()
    objective = results.incumbent_objective
    bound = results.objective_bound
    if term == TerminationCondition.convergenceCriteriaSatisfied:
        status = SolveStatus.OPTIMAL
    else:
        status = SolveStatus.TIME_LIMIT
    gap = _relative_gap(objective, bound)
    if status is SolveStatus.OPTIMAL and gap is None:
        gap = 0.0
    return SolveInfo(status, objective, bound, gap, elapsed_s, build_time_s)


def timed_build(build, *args, **kwargs):
    """Call ``build(*args, **kwargs)`` and return ``(model, seconds)``."""
    start = time.perf_counter()
    model = build(*args, **kwargs)
    return model, time.perf_counter() - start


def infeasible_message(what: str, resource: str, have_bytes: float, need_bytes: float,
                       *alternatives: tuple[str, float, float]) -> str:
    """One or two sentences: which resource binds, what it has, the least that would do.

    ``alternatives`` are further ``(resource, have_bytes, need_bytes)`` each of which, raised
    alone, would also make the problem feasible."""
    if not alternatives:
        return (f"{what} is infeasible: {resource} is binding; it has {have_bytes:.4g} bytes but needs at "
                f"least {need_bytes:.4g} bytes. Raise the {resource} or relax the workload.")
    fixes = ((resource, have_bytes, need_bytes),) + alternatives
    names = " or ".join(f[0] for f in fixes)
    options = "; ".join(f"{r} needs at least {n:.4g} bytes (has {h:.4g})" for r, h, n in fixes)
    return f"{what} is infeasible: {names} is binding; raising any one suffices: {options}."
