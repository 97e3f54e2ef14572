"""Serving pipelines, device by device: each pipeline device holds its own layers' weights and KV
cache (a hybrid model's attention layers, a windowed model's windows), the embedding on the
first, the output layer and a speculative drafter on the last; the peak is the fullest device's,
and the serving simulation sizes its KV pool by the device that holds the fewest requests."""
from dataclasses import replace

import pytest

import simhw
from simhw.cost.memory import device_memory_breakdowns, kv_cache_bytes, memory_breakdown
from simhw.cost.stages import device_params, drafter_params
from simhw.sim.serving_costs import kv_model, kv_pool
from simhw.sim.serving_types import ServingOptions
from simhw.workload.from_yaml import workload_from_dict

H100 = simhw.load_hw("h100")


def _wl(model, pp, **extra):
    decode = {"context_len": 8192, "new_tokens": 256, **extra.pop("decode", {})}
    return workload_from_dict({"model": model, "mode": "decode", "seq_len": 8192, "micro_batch": 8, "global_batch": 8,
                               "dtype": "bf16", "devices": pp, "parallelism": {"pp": pp}, "decode": decode,
                               "engine": "vllm-v1", **extra})


@pytest.mark.parametrize("model, pp", [("llama2-70b", 3), ("gemma2-9b", 4), ("qwen3-next-80b-a3b", 5),
                                       ("deepseek-v3", 4)])
def test_the_devices_caches_add_up_to_the_pipelines(model, pp):
    wl = _wl(model, pp)
    per_device = [kv_cache_bytes(wl, d) for d in range(pp)]
    assert sum(per_device) == pytest.approx(pp * kv_cache_bytes(wl), rel=1e-12)


def test_a_device_caches_the_attention_layers_it_holds():
    wl = _wl("qwen3-next-80b-a3b", 5)          # 48 layers, attention on every fourth: 2 or 3 per device
    m = wl.model
    per_token = kv_cache_bytes(wl, 0)
    attention = [sum(m.is_attention(i) for i in held) for held in wl.device_layers()]
    assert len(set(attention)) > 1
    # the recurrent state is per sequence, not per token: compare the growth with the context
    longer = replace(wl, decode=replace(wl.decode, context_len=16384))
    growth = [kv_cache_bytes(longer, d) - kv_cache_bytes(wl, d) for d in range(5)]
    assert per_token > 0
    assert [g / growth[0] for g in growth] == pytest.approx([a / attention[0] for a in attention], rel=1e-12)


def test_uneven_stages_cache_in_proportion_to_their_layers():
    wl = _wl("llama2-70b", 3)                  # 80 layers: 26, 27, 27
    assert wl.stage_layers() == (26, 27, 27)
    kv = [kv_cache_bytes(wl, d) for d in range(3)]
    assert kv[0] / kv[1] == pytest.approx(26 / 27, rel=1e-12)
    mems = device_memory_breakdowns(wl, H100)
    assert [b.kv_cache_bytes for b in mems] == pytest.approx(kv, rel=1e-12)
    # the peak is the fullest device's: the last, with a layer more than the first and the output layer
    assert memory_breakdown(wl, H100).peak_bytes == max(b.peak_bytes for b in mems) == mems[2].peak_bytes
    assert mems[2].logits_bytes > 0 and mems[0].logits_bytes == mems[1].logits_bytes == 0


def test_each_device_holds_its_own_weights():
    wl = _wl("deepseek-v3", 4)                 # three dense leading layers on the first device
    params = [sum(device_params(wl, d)) for d in range(4)]
    whole = sum(params)
    assert whole == pytest.approx(wl.model.params(), rel=1e-3)     # every weight on one device or another
    mems = device_memory_breakdowns(wl, H100)
    assert [b.parameters_bytes for b in mems] == pytest.approx([p * 2 for p in params], rel=1e-12)


@pytest.mark.parametrize("draft", [None, "qwen3-0.6b"])
def test_the_drafter_runs_and_caches_on_the_output_layers_device(draft):
    decode = {"speculative_tokens": 2, "acceptance": 0.7, **({"draft_model": draft} if draft else {})}
    base, spec = _wl("qwen3-32b", 2), _wl("qwen3-32b", 2, decode=decode)
    assert drafter_params(spec) > 0 and drafter_params(base) == 0
    assert sum(device_params(spec, 0)) == sum(device_params(base, 0))
    assert sum(device_params(spec, 1)) == pytest.approx(sum(device_params(base, 1)) + drafter_params(spec), rel=1e-12)
    assert kv_cache_bytes(spec, 0) == kv_cache_bytes(base, 0)
    assert kv_cache_bytes(spec, 1) > kv_cache_bytes(base, 1)
    if draft is None:   # the one-layer drafter caches one more layer's keys and values
        assert kv_cache_bytes(spec, 1) - kv_cache_bytes(base, 1) == pytest.approx(kv_cache_bytes(base, 1) / 32,
                                                                                  rel=1e-12)


def test_weight_only_quantization_follows_each_devices_layers():
    wl = _wl("llama2-70b", 3, memory={"weight_bits": 4})
    full = _wl("llama2-70b", 3)
    q, f = device_memory_breakdowns(wl, H100), device_memory_breakdowns(full, H100)
    assert q[0].parameters_bytes < q[2].parameters_bytes
    for d in range(3):
        layers, other = device_params(full, d)
        assert q[d].parameters_bytes == pytest.approx(layers * 4.25 / 8 + other * 2, rel=1e-12)
        assert f[d].parameters_bytes == pytest.approx((layers + other) * 2, rel=1e-12)


def test_the_kv_pool_is_the_device_that_holds_fewest_requests():
    wl = _wl("llama2-70b", 3)
    options = ServingOptions(max_num_seqs=64)
    longest = 4096
    token_bytes, seq_bytes, budget = kv_pool(wl, H100, options, longest)
    mems = device_memory_breakdowns(replace(wl, micro_batch=64, global_batch=64), H100)
    usable = H100.main_memory.capacity_bytes * options.kv_memory_fraction
    held = [(usable - b.parameters_bytes - b.activations_bytes - b.logits_bytes) / kv_model(wl, d)[0]
            for d, b in enumerate(mems)]
    assert budget / token_bytes == pytest.approx(min(held), rel=1e-12)
    assert token_bytes == pytest.approx(kv_model(wl, 2)[0], rel=1e-12)    # the last device, fullest
    assert min(held) < held[0]


def test_serving_a_pipeline_simulates():
    from simhw.sim.requests import poisson_requests
    from simhw.sim.serving import simulate_serving

    wl = _wl("llama2-70b", 3)
    res = simulate_serving(wl, H100, poisson_requests(20, 2.0, 1024, 64), ServingOptions(max_num_seqs=16))
    assert len(res.requests) == 20


def test_estimate_reports_each_pipeline_devices_memory(tmp_path, capsys):
    """estimate's JSON and CSV give every pipeline device's peak (stage_memory_bytes), the table the
    fullest and the emptiest; the memory block is the fullest device's."""
    import json

    import yaml

    from simhw.cli import main

    wl = _wl("llama2-70b", 3)
    est = simhw.estimate(wl, H100)
    assert len(est.stage_memory_bytes) == 3
    assert max(est.stage_memory_bytes) == est.memory.peak_bytes
    assert est.stage_memory_bytes == tuple(b.peak_bytes for b in device_memory_breakdowns(wl, H100))
    assert simhw.estimate(_wl("llama2-7b", 1), H100).stage_memory_bytes == ()
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({"model": "llama2-70b", "mode": "decode", "seq_len": 8192, "micro_batch": 8,
                                    "global_batch": 8, "dtype": "bf16", "devices": 3, "parallelism": {"pp": 3},
                                    "decode": {"context_len": 8192, "new_tokens": 256}}))
    assert main(["estimate", str(path), "--hw", "h100"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "fullest pipeline device" in l)
    assert "stage 2:" in line and "least" in line
    assert main(["estimate", str(path), "--hw", "h100", "--format", "json"]) == 0
    peaks = json.loads(capsys.readouterr().out)["results"][0]["stage_memory_bytes"]
    assert len(peaks) == 3 and peaks[2] == max(peaks)
    assert main(["estimate", str(path), "--hw", "h100", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    column = out[0].split(",").index("stage_memory_bytes")
    assert len(out[1].split(",")[column].split("|")) == 3
