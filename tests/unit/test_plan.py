"""`simhw plan`: the parallel-layout search ranks costed candidates that fit, each one an ordinary
estimate of the workload with its settings, and says clearly when nothing fits."""
import json

import pytest

from simhw.cli import main
from simhw.cost.estimate import estimate
from simhw.cost.memory import memory_breakdown
from simhw.cost.plan import Objective, plan
from simhw.errors import SimhwError
from simhw.spec.load import load_hw
from simhw.workload.from_yaml import load_workload

TRAIN = "workloads/llama2-7b-train.yaml"
DECODE = "workloads/llama2-70b-decode.yaml"


@pytest.fixture(scope="module")
def train_plan():
    return plan(TRAIN, "dgx-h100")


def _sets(candidate):
    from simhw.cost.plan import _expand     # "full N/C" and module lists as workload fields
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in _expand(dict(candidate.settings)).items()]


def test_candidates_fit_are_ranked_and_reproduce_as_estimates(train_plan):
    hw = load_hw("dgx-h100")
    ranked = train_plan.ranked
    assert len(ranked) > 20 and ranked[0].result.memory.fits
    scores = [c.score(Objective.TIME) for c in ranked]
    assert scores == sorted(scores)
    for c in ranked[:3] + ranked[-2:]:
        wl = load_workload(TRAIN, _sets(c))
        assert memory_breakdown(wl, hw).fits
        assert estimate(wl, hw).step_time_s == pytest.approx(c.result.step_time_s)


def test_the_best_layout_is_no_slower_than_the_workloads_own(train_plan):
    own = estimate(load_workload(TRAIN), load_hw("dgx-h100"))
    assert train_plan.ranked[0].result.step_time_s <= own.step_time_s * (1 + 1e-9)


def test_the_search_space_follows_the_workload():
    """Interleaving is offered in training only, context parallelism for long sequences, expert
    parallelism for a mixture of experts; a layout whose memory settings never fit is counted."""
    serve = plan(DECODE, "dgx-h100", ["devices=8"])
    assert {dict(c.settings)["parallelism.schedule"] for c in serve.ranked} == {"1f1b"}
    assert all("memory.zero_stage" not in dict(c.settings) for c in serve.ranked)
    # serving: data-parallel attention beside plain TP, and no sequence parallelism
    assert {dict(c.settings)["parallelism.attention_dp"] for c in serve.ranked} == {True, False}
    assert not any(dict(c.settings)["parallelism.sp"] for c in serve.ranked)
    train = plan(TRAIN, "dgx-h100", ["global_batch=16"])
    assert not any(dict(c.settings)["parallelism.attention_dp"] for c in train.ranked)
    assert {dict(c.settings)["parallelism.cp"] for c in train.ranked} == {1}
    assert {dict(c.settings)["parallelism.ep"] for c in train.ranked} == {1}
    long = plan(TRAIN, "dgx-h100", ["model=llama3-8b", "seq_len=65536", "global_batch=16"])
    assert max(dict(c.settings)["parallelism.cp"] for c in long.ranked) > 1
    assert long.too_big > 0         # 64k-token sequences: some layouts never fit an H100
    moe = plan(TRAIN, "dgx-h100", ["model=qwen3-30b-a3b", "global_batch=16"])
    assert max(dict(c.settings)["parallelism.ep"] for c in moe.ranked) > 1


def test_cost_and_energy_objectives_rank_by_their_own_measure(train_plan):
    by_cost = plan(TRAIN, "dgx-h100", objective="cost").ranked
    costs = [c.result.cost_usd / (c.result.tokens_per_s * c.result.step_time_s) for c in by_cost]
    assert costs == sorted(costs)
    by_energy = plan(TRAIN, "dgx-h100", objective="energy").ranked
    energies = [c.score(Objective.ENERGY) for c in by_energy]
    assert energies == sorted(energies)


def test_nothing_that_fits_is_a_clear_error(capsys):
    with pytest.raises(SimhwError, match="fits in device memory"):
        plan(TRAIN, "dgx-a100", ["model=llama2-70b"])
    assert main(["plan", TRAIN, "--hw", "dgx-a100", "--set", "model=llama2-70b"]) == 2
    err = capsys.readouterr().err
    assert "add devices" in err and "Traceback" not in err


def test_cli_table_json_csv_and_bad_input(tmp_path, capsys):
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n1 ") + out.count("\n2 ") + out.count("\n3 ") == 3 and "layouts of" in out
    path = tmp_path / "p.json"
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--top", "2", "--format", "json", "-o", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["schema"] == "simhw.plan/1" and len(data["ranked"]) == 2 and data["costed"] > 2
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--top", "2", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("tp,pp,")
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--top", "0"]) == 2
    assert "--top 0" in capsys.readouterr().err
    assert main(["plan", "tests/fixtures/nope.json", "--hw", "h100"]) == 2


def test_several_machines_are_ranked_together_and_one_too_small_is_named(capsys):
    assert main(["plan", TRAIN, "--hw", "dgx-a100", "--hw", "dgx-h100", "--hw", "a10", "--objective", "cost",
                 "--top", "4", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hardware,tp,") and len(lines) == 5
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--hw", "a10", "--top", "2", "--set", "model=llama2-13b"]) == 0
    assert "on a10 fits in device memory" in capsys.readouterr().out


def test_serving_batches_under_a_latency_target():
    """Decode: the batch per replica is searched too, each replica holding pp of them in flight, and
    a time-per-output-token target keeps only the layouts that meet it; the best is the highest
    throughput per device among those."""
    free = plan(DECODE, "dgx-h100", ["devices=8"], serving_batches=(8, 32, 128))
    capped = plan(DECODE, "dgx-h100", ["devices=8"], serving_batches=(8, 32, 128), max_step_s=0.03)
    assert capped.too_slow > 0 and all(c.result.step_time_s <= 0.03 for c in capped.ranked)
    assert capped.ranked[0].result.tokens_per_s <= free.ranked[0].result.tokens_per_s
    for c in capped.ranked:
        s = dict(c.settings)
        assert s["global_batch"] == s["micro_batch"] * s["parallelism.dp"] * s["parallelism.pp"]
    with pytest.raises(SimhwError, match="takes at most"):
        plan(DECODE, "dgx-h100", ["devices=8"], max_step_s=1e-6)


@pytest.mark.parametrize("flag, value, needle", [("--batches", "1,x", "whole numbers"),
                                                 ("--max-step-time", "5GB", "as seconds"),
                                                 ("--max-step-time", "0 ms", "must be positive")])
def test_bad_plan_options_are_one_line_errors(flag, value, needle, capsys):
    assert main(["plan", DECODE, "--hw", "dgx-h100", flag, value]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_vary_plans_each_value_and_each_shows_every_best(capsys):
    args = ["plan", TRAIN, "--hw", "dgx-b200", "--hw", "dgx-h100", "--vary", "precision=none,nvfp4", "--each",
            "--format", "csv"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hardware,precision,tp,")
    assert sorted(line.split(",")[:2] for line in lines[1:]) == [["dgx-b200", "none"], ["dgx-b200", "nvfp4"],
                                                               ["dgx-h100", "none"]]
    assert main(args[:-2]) == 0
    out = capsys.readouterr().out
    assert "on dgx-h100, precision=nvfp4:" in out and "tensor cores" in out
    assert main(["plan", TRAIN, "--hw", "dgx-h100", "--vary", "hw.memory.hbm.bandwidth=3TB/s"]) == 2
    assert "workload fields only" in capsys.readouterr().err
