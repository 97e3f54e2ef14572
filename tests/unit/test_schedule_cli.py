"""`simhw schedule`: writes a plan `simhw simulate --plan` replays; bad input exits 2."""
import pytest
import yaml

from simhw.cli import main


def test_schedule_writes_a_replayable_plan(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    code = main(["schedule", "workloads/llama2-7b-1m.yaml", "--hw", "a800-memo", "--set", "seq_len=262144",
                 "-o", str(plan)])
    out = capsys.readouterr().out
    assert code == 0 and "binding" in out and "simulated" in out
    data = yaml.safe_load(plan.read_text())
    assert data["predicted"]["step_time_s"] > 0
    assert main(["simulate", "workloads/llama2-7b-1m.yaml", "--hw", "a800-memo", "--set", "seq_len=262144",
                 "--plan", str(plan)]) == 0


def test_schedule_decode_placement(capsys):
    assert main(["schedule", "workloads/llama2-70b-decode.yaml", "--hw", "a100", "--device-memory", "40GiB"]) == 0
    out = capsys.readouterr().out
    assert "weights" in out and "tok/s" in out


@pytest.mark.parametrize("args,needle", [
    (["--device-memory", "40"], "has no unit"),
    (["--device-memory", "40 W"], "cannot read"),
    (["--device-memory", "1GiB"], "device memory"),
])
def test_schedule_bad_input(args, needle, capsys, tmp_path):
    out = tmp_path / "p.yaml"
    code = main(["schedule", "workloads/llama2-7b-1m.yaml", "--hw", "a800-memo", "-o", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err and not out.exists()


def test_schedule_placement_and_checkpoint(capsys, tmp_path):
    assert main(["schedule", "workloads/llama2-7b-train.yaml", "--hw", "a100", "--model", "placement"]) == 0
    out = capsys.readouterr().out
    assert "caching allocator" in out and "fragmentation" in out
    plan = tmp_path / "ck.yaml"
    assert main(["schedule", "workloads/llama2-7b-train.yaml", "--hw", "a100", "--model", "checkpoint",
                 "--device-memory", "16GiB", "--time-limit", "10", "-o", str(plan)]) == 0
    assert yaml.safe_load(plan.read_text())["checkpoints"]


def test_decode_placement_keeps_free_data_on_the_gpu_and_reports_the_serving_iteration(tmp_path, capsys):
    """With everything fitting in HBM, no byte leaves the GPU (the small activations used to land in
    CPU memory: a tie the LP broke arbitrarily), and the plan gives the iteration the serving engine
    sees around the LP's GPU step: estimate's serving rule, max(GPU, layers x host dispatch) plus one
    link of the other and the engine's own work, for the workload's engine (vLLM V1) and for
    Splitwise's eager one."""
    import simhw
    from simhw.cost.estimate import engine_costs
    from simhw.workload.from_yaml import load_workload
    hw = simhw.load_hw("dgx-a100")
    for engine in ("vllm-v1", "splitwise-eager"):
        out = tmp_path / f"{engine}.yaml"
        assert main(["schedule", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--set",
                     f"engine={engine}", "-o", str(out)]) == 0
        assert "per iteration" in capsys.readouterr().out
        plan = yaml.safe_load(out.read_text())
        assert all(plan[k]["gpu"] == pytest.approx(1.0) for k in ("weights", "kv_cache", "activations"))
        wl = load_workload("workloads/llama2-70b-decode.yaml", [f"engine={engine}"])
        e = engine_costs(wl, hw.device)
        gpu = plan["predicted"]["step_time_s"]
        h = e.host_per_layer_s
        expected = max(gpu, 80 * h) + min(h, gpu / 80) + e.step_s + 32 * e.per_sequence_s
        assert plan["predicted"]["iteration_s"] == pytest.approx(expected, rel=1e-9)
        # the LP's GPU step is floored by the cost model's own kernel times: the same iteration
        assert plan["predicted"]["iteration_s"] == pytest.approx(simhw.estimate(wl, hw).step_time_s, rel=0.005)
        assert plan["predicted"]["iteration_s"] > gpu
