"""Training's multi-token prediction modules (model.mtp_layers; DeepSeek-V3, arXiv 2412.19437 §2.2)
and Megatron pipeline layouts (parallelism.layout: "Et*3|(tt|)*29m|L")."""
from __future__ import annotations

import json

import pytest

import simhw
from simhw.cli import main
from simhw.cost.memory import activation_bytes_per_layer, layer_params_per_device, memory_breakdown
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import OpKind
from simhw.workload.layout import Piece, parse_layout
from simhw.workload.spec import device_layers, stage_layers
from simhw.workload.transformer import build_graph

BASE = {"model": "llama2-7b", "mode": "train", "seq_len": 4096, "micro_batch": 1, "global_batch": 64,
        "devices": 8, "dtype": "bf16", "optimizer": "adam", "memory": {"recompute": "selective", "zero_stage": 1}}


def _wl(mtp=0, **changes):
    raw = dict(BASE, **changes)
    raw["model"] = {"base": raw["model"], "mtp_layers": mtp}
    return workload_from_dict(raw)


def test_an_mtp_module_is_a_projection_a_layer_and_the_shared_head_after_the_model():
    plain, mtp = build_graph(_wl(0)), build_graph(_wl(1))
    ops = [op for op in mtp.ops if op.name.startswith("mtp0.")]
    assert ops and all(op.layer == -1 for op in ops)          # with the head, on the last stage
    proj = next(op for op in ops if op.name == "mtp0.mtp_proj")
    assert (proj.shape["m"], proj.shape["k"], proj.shape["n"]) == (4096, 2 * 4096, 4096)
    layer_gemms = [op for op in plain.ops if op.kind is OpKind.GEMM and op.layer == 31 and op.phase.value == "fwd"]
    mtp_gemms = [op for op in ops if op.kind is OpKind.GEMM and op.phase.value == "fwd"]
    # one layer's GEMMs, the projection and the output layer again
    assert len(mtp_gemms) == len(layer_gemms) + 2
    assert {op.name for op in mtp.ops} - {op.name for op in plain.ops} == {op.name for op in ops}
    # serving runs no MTP module (only a drafter with decode.speculative_tokens)
    serve = workload_from_dict({"model": {"base": "llama2-7b", "mtp_layers": 1}, "mode": "prefill", "seq_len": 512})
    assert not [op for op in build_graph(serve).ops if op.name.startswith("mtp")]


def test_estimate_and_simulation_agree_on_an_mtp_module():
    hw = simhw.load_hw("dgx-a100")
    base, one = simhw.estimate(_wl(0), hw), simhw.estimate(_wl(1), hw)
    sim = simhw.simulate(_wl(1), hw)
    # a 33rd layer and a second output layer and loss: 3-8% more time
    assert 1.03 < one.step_time_s / base.step_time_s < 1.08
    assert sim.step_time_s == pytest.approx(one.step_time_s, rel=0.01)
    assert sim.peak_memory_bytes["device"] == pytest.approx(one.memory.peak_bytes, rel=0.01)


def test_an_mtp_module_holds_a_layer_its_projection_its_activations_and_its_logits():
    wl0, wl1 = _wl(0), _wl(1)
    m0, m1 = memory_breakdown(wl0), memory_breakdown(wl1)
    h = 4096
    extra_params = layer_params_per_device(wl1) + 2 * h * h
    assert m1.parameters_bytes - m0.parameters_bytes == pytest.approx(2 * extra_params, rel=1e-9)
    assert m1.logits_bytes == pytest.approx(2 * m0.logits_bytes, rel=1e-9)
    assert m1.activations_bytes - m0.activations_bytes == pytest.approx(
        activation_bytes_per_layer(wl1) + 4 * 2 * 4096 * h, rel=1e-9)


def test_the_even_split_gives_the_mtp_module_a_slot_of_the_last_chunk():
    assert stage_layers(61, 4, extra_last=1) == (15, 16, 16, 14)
    assert sum(stage_layers(61, 8, 4, extra_last=1)) == 61
    assert stage_layers(8, 4, extra_last=3) == (2, 3, 3, 0)        # a short last stage gives up the rest
    assert device_layers(32, 4, 1, 0) == device_layers(32, 4)
    wl = workload_from_dict({"model": "deepseek-v3", "mode": "train", "devices": 256, "seq_len": 4096,
                             "global_batch": 4096, "parallelism": {"pp": 4, "ep": 64}})
    assert wl.mtp_modules == 1 and wl.stage_layers() == (15, 16, 16, 14) and wl.piece_devices() == (0, 3, 3)


def test_a_layout_places_layers_mtp_and_loss_chunk_by_chunk():
    layout = parse_layout("Et*3|(tt|)*29m|L", 32, 61, 1)
    assert [len(d) for d in layout.device_layers(8)] == [9, 8, 8, 8, 8, 8, 6, 6]
    assert (layout.device_of(Piece.MTP, 8), layout.device_of(Piece.LOSS, 8)) == (6, 7)
    wl = workload_from_dict({"model": "deepseek-v3", "mode": "train", "devices": 256, "seq_len": 4096,
                             "global_batch": 4096,
                             "parallelism": {"pp": 8, "interleave": 4, "ep": 32, "layout": "Et*3|(tt|)*29m|L"}})
    assert wl.stage_layers() == (9, 8, 8, 8, 8, 8, 6, 6) and wl.piece_devices() == (0, 7, 6)


def test_a_layout_that_spells_the_even_split_prices_as_it():
    hw = simhw.load_hw("dgx-a100")
    par = {"pp": 4, "dp": 2}
    plain = _wl(0, parallelism=par)
    spelled = _wl(0, parallelism=dict(par, layout="Et*8|t*8|t*8|t*8L"))
    assert spelled.device_layers() == plain.device_layers()
    assert simhw.estimate(spelled, hw).step_time_s == pytest.approx(simhw.estimate(plain, hw).step_time_s, rel=1e-12)
    # a layer more on the last stage, which also runs the output layer and loss, lengthens the step
    # by about a layer's share; the pipeline simulation agrees
    heavy = _wl(0, parallelism=dict(par, layout="Et*7|t*8|t*8|t*9L"))
    assert heavy.stage_layers() == (7, 8, 8, 9)
    ratio = simhw.estimate(heavy, hw).step_time_s / simhw.estimate(plain, hw).step_time_s
    assert 1.05 < ratio < 1.15
    sim = simhw.simulate(heavy, hw)
    assert sim.step_time_s == pytest.approx(simhw.estimate(heavy, hw).step_time_s, rel=0.05)


def test_mtp_on_a_chunk_of_its_own_moves_its_time_there():
    hw = simhw.load_hw("dgx-a100")
    par = {"pp": 4, "dp": 2}
    with_loss = _wl(1, parallelism=dict(par, layout="Et*8|t*8|t*8|t*8mL"))
    apart = _wl(1, parallelism=dict(par, layout="Et*8|t*9|t*8m|t*7L"))
    assert apart.piece_devices() == (0, 3, 2)
    joint, split = simhw.estimate(with_loss, hw), simhw.estimate(apart, hw)
    assert split.step_time_s < joint.step_time_s
    # each device's work per micro-batch: the MTP module's on device 2 now, less of the last one's
    assert max(range(4), key=joint.stage_busy_s.__getitem__) == 3
    assert split.stage_busy_s[3] < joint.stage_busy_s[3] and split.stage_busy_s[2] > joint.stage_busy_s[2]
    assert max(split.stage_busy_s) < max(joint.stage_busy_s)


def test_estimate_shows_the_busiest_pipeline_stage(tmp_path, capsys):
    import yaml
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(dict(BASE, parallelism={"pp": 4, "layout": "Et*7|t*8|t*8|t*9L"})))
    assert main(["estimate", str(path), "--hw", "dgx-a100"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "busiest pipeline stage" in l)
    assert "stage 3:" in line and "least" in line
    assert main(["estimate", str(path), "--hw", "dgx-a100", "--format", "json"]) == 0
    busy = json.loads(capsys.readouterr().out)["results"][0]["stage_busy_s"]
    assert len(busy) == 4 and busy[3] == max(busy) and busy[0] == min(busy)


@pytest.mark.parametrize("layout,words", [
    ("Et*8|t*8|t*8|t*7L", "places 31 layers"),
    ("Et*8|t*8|t*16L", "names 3 chunks but pp x interleave = 4"),
    ("Et*8|t*8|t*8|t*8xL", "'x', which is not a piece"),
    ("t*8|Et*8|t*8|t*8L", "must start with the embedding"),
    ("Et*8|t*8|t*8|t*8mL", "places 1 multi-token prediction modules (m) but the workload runs 0"),
    ("Et*16|t*8||t*8L", "chunk 2 holds no layer"),
    (3, "expected a Megatron pipeline layout string"),
])
def test_a_bad_layout_is_a_one_line_error(tmp_path, capsys, layout, words):
    import yaml
    raw = dict(BASE, parallelism={"pp": 4, "layout": layout})
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["estimate", str(path), "--hw", "dgx-a100"]) == 2
    err = capsys.readouterr().err
    assert "parallelism.layout" in err and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_layout_on_a_v_schedule_and_a_negative_mtp_count_are_errors(tmp_path, capsys):
    import yaml
    for raw, words in ((dict(BASE, parallelism={"pp": 4, "schedule": "v-half", "layout": "Et*8|t*8|t*8|t*8L"}),
                        "does not apply to the v-half schedule"),
                       (dict(BASE, model={"base": "llama2-7b", "mtp_layers": -1}), "mtp_layers")):
        path = tmp_path / "w.yaml"
        path.write_text(yaml.safe_dump(raw))
        assert main(["estimate", str(path), "--hw", "dgx-a100"]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_hugging_face_num_nextn_predict_layers_is_mtp_layers(tmp_path):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 4, "hidden_size": 512,
           "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 32000, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "hidden_act": "silu", "num_nextn_predict_layers": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    wl = workload_from_dict({"model": {"hf_config": "config.json"}, "mode": "train", "seq_len": 256},
                            base_dir=tmp_path)
    assert wl.model.mtp_layers == 2 and wl.mtp_modules == 2


def test_a_pipeline_partition_reads_as_a_layout():
    """simhw schedule --model pipeline prints its 1F1B / interleaved partitions as a layout string
    that parallelism.layout reads back to the same layers per device; a V shape has none."""
    from types import SimpleNamespace

    from simhw.schedule.from_workload import partition_layout
    from simhw.schedule.pipeline_partition import PipelineSchedule
    from simhw.workload.layout import format_layout

    wl = _wl(1, parallelism={"pp": 2, "interleave": 2})
    # chain: 0 embedding, 1..32 layers, 33 output layer; four virtual stages, chunk c on device c % 2
    stages = (tuple(range(0, 9)), tuple(range(9, 17)), tuple(range(17, 25)), tuple(range(25, 34)))
    text = partition_layout(SimpleNamespace(schedule=PipelineSchedule.INTERLEAVED, stage_layers=stages), wl)
    assert text == "Et*8|t*8|t*8|t*8mL"
    layout = parse_layout(text, 4, 32, 1)
    assert [len(d) for d in layout.device_layers(2)] == [16, 16] and layout.device_of(Piece.MTP, 2) == 1
    assert partition_layout(SimpleNamespace(schedule=PipelineSchedule.V_HALF, stage_layers=stages), wl) == ""
    runs = [(True, 3, 0, False)] + [(False, 2, 0, False)] * 29 + [(False, 0, 1, False), (False, 0, 0, True)]
    assert format_layout(runs) == "Et*3|(t*2|)*29m|L"
    assert parse_layout(format_layout(runs), 32, 61, 1) == parse_layout("Et*3|(tt|)*29m|L", 32, 61, 1)


def test_schedule_and_speculative_decoding_run_beside_a_layout(tmp_path, capsys):
    """Workloads derived with another pp (the pipeline partition's one-stage costing, a draft model)
    drop the layout rather than fail on it."""
    import yaml
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(dict(BASE, model={"base": "llama2-7b", "mtp_layers": 1},
                                        parallelism={"pp": 4, "layout": "Et*8|t*8|t*8|t*8mL"})))
    assert main(["schedule", str(path), "--hw", "dgx-a100", "--model", "pipeline", "--time-limit", "5"]) == 0
    assert "device 3" in capsys.readouterr().out
    dec = {"model": "llama2-7b", "mode": "decode", "seq_len": 1024, "micro_batch": 8, "devices": 4,
           "parallelism": {"pp": 4, "layout": "Et*8|t*8|t*8|t*8L"},
           "decode": {"context_len": 1024, "new_tokens": 64, "speculative_tokens": 2, "acceptance": 0.7,
                      "draft_model": {"base": "llama2-7b", "layers": 2}}}
    path.write_text(yaml.safe_dump(dec))
    assert main(["estimate", str(path), "--hw", "dgx-a100"]) == 0


def test_the_output_layers_device_is_costed_with_its_logits():
    """With one micro-batch in flight the first pipeline stage holds no more than the last, which
    also keeps the standard loss's 14 bytes per vocabulary entry: the peak is the last device's."""
    hw = simhw.load_hw("dgx-h100")
    raw = {"model": "llama3-8b", "mode": "train", "seq_len": 8192, "micro_batch": 1, "devices": 8,
           "framework": "eager", "parallelism": {"pp": 2}, "memory": {"zero_stage": 1}}
    one = workload_from_dict(dict(raw, global_batch=4))          # one micro-batch per pipeline
    mem = memory_breakdown(one, hw)
    assert mem.logits_bytes == pytest.approx(8192 * 128256 * 14)
    assert mem.activations_bytes == pytest.approx(16 * activation_bytes_per_layer(one) + 2 * 2 * 8192 * 4096)
    assert simhw.simulate(one, hw).peak_memory_bytes["device"] == pytest.approx(mem.peak_bytes, rel=0.01)
    many = workload_from_dict(dict(raw, global_batch=64))        # 16: the first stage holds two
    first = memory_breakdown(many, hw)
    assert first.logits_bytes == 0 and first.activations_bytes == pytest.approx(2 * 16 * activation_bytes_per_layer(many))


def test_recompute_layers_counts_from_each_layout_chunk():
    """memory.recompute_layers N recomputes the first N layers of each model chunk, the layout's."""
    from simhw.workload.recompute import block_recomputed
    wl = _wl(0, parallelism={"pp": 4, "layout": "Et*5|t*11|t*8|t*8L"},
             memory={"recompute": "full", "recompute_layers": 2, "zero_stage": 1})
    assert wl.chunk_starts() == (0, 5, 16, 24)
    assert [i for i in range(32) if block_recomputed(wl, i)] == [0, 1, 5, 6, 16, 17, 24, 25]
