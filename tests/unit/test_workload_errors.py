"""Bad workload input: one clear line, exit code 2, no traceback, nothing written."""
import pytest

from simhw.cli import main

GOOD = """\
name: t
version: 1
model: llama2-7b
mode: train
seq_len: 2048
global_batch: 8
micro_batch: 1
devices: 8
"""


def run(tmp_path, capsys, text, *extra, hw="a100"):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    out = tmp_path / "out.json"
    code = main(["estimate", str(path), "--hw", hw, "-o", str(out), *extra])
    err = capsys.readouterr().err
    return code, err, out


def test_good_workload_runs(tmp_path, capsys):
    code, err, out = run(tmp_path, capsys, GOOD)
    assert code == 0 and out.exists()


@pytest.mark.parametrize("text,needle", [
    (GOOD + "sequence: 5\n", "unknown key 'sequence'"),
    (GOOD.replace("mode: train", "mode: serve"), "mode: 'serve' is not allowed"),
    (GOOD.replace("model: llama2-7b", "model: llama2-7bb"), "did you mean 'llama2-7b'"),
    (GOOD.replace("seq_len: 2048", "seq_len: 0"), "seq_len: expected a whole number ≥ 1"),
    (GOOD.replace("seq_len: 2048", "seq_len: -5"), "seq_len"),
    (GOOD.replace("micro_batch: 1", "micro_batch: two"), "micro_batch"),
    (GOOD + "parallelism: {tp: 3}\n", "does not divide the 32 attention heads"),
    (GOOD + "parallelism: {pp: 3, schedule: v-half}\n", "does not divide the 32 layers"),
    (GOOD.replace("devices: 8", "devices: 40") + "parallelism: {pp: 40}\n", "at least one layer"),
    (GOOD.replace("devices: 8", "devices: 2").replace("global_batch: 8", "global_batch: 3")
     + "parallelism: {pp: 2, interleave: 2}\n", "to be a multiple of pp = 2"),
    (GOOD + "parallelism: {pp: 2, interleave: 2, schedule: v-half}\n",
     "parallelism.interleave: 2 model chunks per device need schedule: interleaved, not v-half"),
    (GOOD + "parallelism: {tp: 4, dp: 4}\n", "devices = 8"),
    (GOOD + "memory: {zero_stage: 5}\n", "zero_stage"),
    (GOOD + "memory: {recompute: some}\n", "recompute: 'some' is not allowed"),
    (GOOD + "dtype: fp13\n", "not a data type"),
    (GOOD + "version: 9\n", "version: 9 is not supported"),
    ("model: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    (GOOD.replace("model: llama2-7b", "model: {layers: 2, hidden: 64}"), "model.heads: missing"),
    (GOOD + "engine: {step_overhead: 2 GB}\n", "engine.step_overhead: cannot read '2 GB' as seconds"),
    (GOOD + "engine: {step_overhead: 2}\n", "engine.step_overhead: 2 has no unit"),
    (GOOD + "engine: {per_token: 1 ms}\n", "engine: unknown key 'per_token'"),
    (GOOD + "engine: {host_per_layer: 3 W}\n", "engine.host_per_layer: cannot read '3 W' as seconds"),
    (GOOD + "engine: {per_worker: -1 ms}\n", "engine.per_worker"),
    (GOOD + "engine: vllm-v2\n", "engine: unknown engine 'vllm-v2' (did you mean 'vllm-v1'?)"),
    (GOOD.replace("model: llama2-7b", "model: {base: llama2-7b, shared_expert_ffn: 1024}"),
     "model.shared_expert_ffn: shared experts belong to a mixture of experts"),
])
def test_bad_workload(tmp_path, capsys, text, needle):
    code, err, out = run(tmp_path, capsys, text)
    assert code == 2
    assert err.startswith("simhw: error:") and err.count("\n") == 1
    assert "Traceback" not in err
    assert needle in err
    assert not out.exists()


def test_missing_file(tmp_path, capsys):
    code = main(["estimate", str(tmp_path / "nope.yaml"), "--hw", "a100"])
    err = capsys.readouterr().err
    assert code == 2 and "file not found" in err


def test_unknown_hardware_suggests_closest(tmp_path, capsys):
    code, err, out = run(tmp_path, capsys, GOOD, hw="h10")
    assert code == 2 and "unknown hardware 'h10'" in err and "did you mean" in err


@pytest.mark.parametrize("override,needle", [
    ("seq_len", "expected KEY=VALUE"),
    ("bogus=1", "unknown field 'bogus'"),
    ("parallelism.tp=5", "does not divide"),
    ("seq_len=0", "seq_len"),
])
def test_bad_override(tmp_path, capsys, override, needle):
    code, err, out = run(tmp_path, capsys, GOOD, "--set", override)
    assert code == 2 and needle in err and not out.exists()


def test_overrides_apply(tmp_path, capsys):
    import json
    code, err, out = run(tmp_path, capsys, GOOD, "--set", "seq_len=4096", "--set", "model=llama2-13b",
                         "--format", "json")
    assert code == 0
    data = json.loads(out.read_text())
    assert data["schema"] == "simhw.estimate/1"
    base_code, _, base_out = run(tmp_path, capsys, GOOD, "--format", "json")
    base = json.loads(base_out.read_text())
    assert data["results"][0]["model_flops"] > 2 * base["results"][0]["model_flops"]


def test_hf_config(tmp_path, capsys):
    import json
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008,
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
           "vocab_size": 32000, "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    text = GOOD.replace("model: llama2-7b", "model: {hf_config: config.json}")
    code, err, out = run(tmp_path, capsys, text, "--format", "json")
    assert code == 0, err
    from simhw.workload.from_yaml import load_workload
    from simhw.workload.builtins import builtin_model
    wl = load_workload(tmp_path / "w.yaml")
    assert wl.model.params() == builtin_model("llama2-7b").params()
    (tmp_path / "config.json").write_text("{broken")
    code, err, out = run(tmp_path, capsys, text)
    assert code == 2 and "not valid JSON" in err


def test_interleave_alone_picks_the_interleaved_schedule():
    """``interleave: v`` without a schedule is Megatron's interleaved 1F1B (a smaller bubble), not
    1F1B with the chunk count ignored."""
    from simhw.workload.from_yaml import workload_from_dict
    from simhw.workload.spec import PipeSchedule
    import simhw
    base = {"model": "llama2-7b", "mode": "train", "seq_len": 2048, "global_batch": 32, "micro_batch": 1,
            "devices": 4}
    plain = workload_from_dict({**base, "parallelism": {"pp": 4}})
    chunked = workload_from_dict({**base, "parallelism": {"pp": 4, "interleave": 2}})
    assert plain.parallelism.schedule is PipeSchedule.ONE_F_ONE_B
    assert chunked.parallelism.schedule is PipeSchedule.INTERLEAVED
    hw = simhw.load_hw("a100")
    t_plain, t_chunked = (simhw.estimate(w, hw).time_breakdown_s["pipeline_bubble"] for w in (plain, chunked))
    assert t_chunked == pytest.approx(t_plain / 2, rel=0.05)


@pytest.mark.parametrize("hw, needle", [
    ("fusemax", "fusemax (spatial) has no fp32 compute peak (nor a wider format); its spec lists fp16"),
    ("m1max-ssd", "m1max-ssd (flash) has no fp32 compute peak"),
    ("memristor-crossbar-16nm", "memristor-crossbar-16nm (crossbar) has no memory levels"),
    ("econ-t-asic-65nm", "econ-t-asic-65nm (spatial) has no memory levels"),
])
def test_workload_on_a_spec_that_cannot_run_it(tmp_path, capsys, hw, needle):
    """Specs of accelerators, drives and arrays that lack what a transformer's ops need say so."""
    code, err, out = run(tmp_path, capsys, GOOD, hw=hw)
    assert code == 2 and needle in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


def test_hf_config_features_simhw_does_not_model_are_named(tmp_path, capsys):
    """A DeepSeek-V3-style config estimates with its multi-head latent attention, dense first layer
    and shared expert modelled (no warning), its SiLU MLP gated; features simhw only approximates
    (MoE layers every other layer, windows only from max_window_layers on) are named once each."""
    import json
    from simhw.workload.from_yaml import load_workload
    from simhw.workload.models import Activation
    cfg = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 1024,
           "intermediate_size": 2816, "moe_intermediate_size": 256, "num_hidden_layers": 4,
           "num_attention_heads": 16, "num_key_value_heads": 16, "n_routed_experts": 16, "n_shared_experts": 1,
           "num_experts_per_tok": 4, "first_k_dense_replace": 1, "kv_lora_rank": 128, "q_lora_rank": 384,
           "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "v_head_dim": 64, "moe_layer_freq": 1,
           "vocab_size": 32000, "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    path = tmp_path / "w.yaml"
    path.write_text(GOOD.replace("model: llama2-7b", "model: {hf_config: config.json}"))
    assert main(["estimate", str(path), "--hw", "h100"]) == 0
    assert "simhw: warning:" not in capsys.readouterr().err
    m = load_workload(str(path)).model
    assert m.activation is Activation.SWIGLU and m.mla and m.dense_layers == 1
    assert (m.kv_lora_rank, m.q_lora_rank, m.rope_head_dim, m.head_dim, m.v_head_dim) == (128, 384, 32, 96, 64)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "moe_layer_freq": 2, "sliding_window": 4096,
                                                      "use_sliding_window": True, "max_window_layers": 2}))
    assert main(["estimate", str(path), "--hw", "h100"]) == 0
    err = capsys.readouterr().err
    assert err.count("simhw: warning:") == 2 and "moe_layer_freq" in err and "max_window_layers" in err
    from simhw.errors import SimhwWarning
    with pytest.warns(SimhwWarning) as record:   # the Python API warns too
        assert load_workload(str(path)).model.sliding_window == 4096     # the window itself is modelled
    assert len(record) == 2 and any("moe_layer_freq" in str(r.message) for r in record)


def test_hf_config_mla_without_head_dims_is_a_clear_error(tmp_path, capsys):
    import json
    cfg = {"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 1024, "intermediate_size": 2816,
           "num_hidden_layers": 4, "num_attention_heads": 16, "kv_lora_rank": 128, "vocab_size": 32000,
           "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    code, err, _ = run(tmp_path, capsys, GOOD.replace("model: llama2-7b", "model: {hf_config: config.json}"))
    assert code == 2 and "Traceback" not in err
    assert "kv_lora_rank" in err and "qk_rope_head_dim" in err and "config.json" in err


@pytest.mark.parametrize("model, key", [
    ("{base: deepseek-v2-lite, rope_head_dim: 192}", "model.rope_head_dim"),
    ("{base: llama2-7b, q_lora_rank: 512}", "model.kv_lora_rank"),
    ("{base: llama2-7b, dense_layers: 2}", "model.dense_layers"),
    ("{base: deepseek-v2-lite, dense_layers: 27}", "model.dense_layers"),
    ("{base: llama2-7b, global_every: 2}", "model.global_every"),
])
def test_mla_dense_layer_and_window_keys_are_checked(tmp_path, capsys, model, key):
    code, err, _ = run(tmp_path, capsys, GOOD.replace("model: llama2-7b", f"model: {model}"))
    assert code == 2 and key in err and "Traceback" not in err
