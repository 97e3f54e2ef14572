"""Hybrid models with recurrent layers (Gated DeltaNet: Qwen3-Next; Mamba-2: Granite 4.0-H):
parameters, Hugging Face configs, the chunked scan's FLOPs and bytes, the per-sequence state in
place of a KV cache, and the estimate against the simulation."""
import json
from dataclasses import replace

import pytest

from simhw.cost.memory import kv_cache_bytes, memory_breakdown, saved_tensor_bytes
from simhw.spec.model import DType
from simhw.workload.graph import OpKind, Phase
from simhw.workload.builtins import builtin_model
from simhw.workload.models import Recurrent
from simhw.workload.spec import DecodeOptions, Mode, Optimizer, Parallelism, Workload
from simhw.workload.transformer import build_graph

QN = builtin_model("qwen3-next-80b-a3b")


def _wl(model, mode=Mode.DECODE, tp=1, pp=1, batch=4, seq=1024, new_tokens=2):
    return Workload(name="t", model=model, mode=mode, seq_len=seq, global_batch=2 * batch * pp, micro_batch=batch,
                    dtype=DType.BF16, optimizer=Optimizer.ADAMW if mode is Mode.TRAIN else Optimizer.NONE,
                    devices=tp * pp, parallelism=Parallelism(tp=tp, pp=pp),
                    decode=DecodeOptions(context_len=seq, new_tokens=new_tokens))


def _op(wl, prefix):
    return next(op for op in build_graph(wl, compact=True).ops if op.name.startswith(prefix) and op.phase is Phase.FWD)


def test_qwen3_next_parameters_and_layer_pattern_match_its_model_card():
    """80 B parameters, 3 B activated (the model card; 3.25 B without the embedding and output
    layer); layers 3, 7, ..., 47 attend with a gated GQA, the other 36 run Gated DeltaNet."""
    assert QN.params() == pytest.approx(80e9, rel=0.005)
    assert QN.params(active=True) - QN.embedding_params() - QN.head_params() == pytest.approx(3.25e9, rel=0.01)
    assert [i for i in range(QN.layers) if not QN.is_recurrent(i)] == list(range(3, 48, 4))
    # one GDN mixer: in_proj_qkvz 2048 x (2·16·128 + 2·32·128), in_proj_ba 2048 x 64, conv 8192 x 4,
    # dt_bias and A_log, the norm's 128 weights, out_proj 4096 x 2048
    assert QN.recurrent_params() == 2048 * 12288 + 2048 * 64 + 8192 * 4 + 2 * 32 + 128 + 4096 * 2048
    # gated attention: q_proj gives query and gate (2 x 16 x 256), k and v 2 x 256 each, o_proj
    assert QN.attention_params() == 2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048


def test_hf_configs_of_gated_deltanet_and_mamba2_hybrids(tmp_path):
    from simhw.workload.hf_config import hf_config_fields
    qn = {"architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
          "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
          "intermediate_size": 5120, "vocab_size": 151936, "rope_theta": 1e7, "rms_norm_eps": 1e-6,
          "hidden_act": "silu", "full_attention_interval": 4, "linear_conv_kernel_dim": 4,
          "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
          "linear_num_value_heads": 32, "num_experts": 512, "num_experts_per_tok": 10,
          "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512}
    (tmp_path / "qn.json").write_text(json.dumps(qn))
    out = hf_config_fields(tmp_path / "qn.json", "w")
    for key in ("recurrent", "attention_every", "attention_offset", "recurrent_key_heads", "recurrent_value_heads",
                "recurrent_key_dim", "recurrent_value_dim", "recurrent_conv", "attention_gate"):
        assert out[key] == getattr(QN, key), key
    # Granite 4.0-H style: Mamba-2 layers named in layer_types, attention at layers 5, 15, 25, 35
    types = ["attention" if i % 10 == 5 else "mamba" for i in range(40)]
    granite = {"model_type": "granitemoehybrid", "hidden_size": 1536, "num_hidden_layers": 40,
               "num_attention_heads": 12, "num_key_value_heads": 4, "intermediate_size": 4096, "vocab_size": 100352,
               "rms_norm_eps": 1e-5, "rope_theta": 1e4, "hidden_act": "silu", "layer_types": types,
               "mamba_n_heads": 48, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_n_groups": 1,
               "mamba_d_conv": 4, "mamba_expand": 2}
    (tmp_path / "g.json").write_text(json.dumps(granite))
    out = hf_config_fields(tmp_path / "g.json", "w")
    assert out["recurrent"] is Recurrent.MAMBA2
    assert (out["attention_every"], out["attention_offset"]) == (10, 5)
    assert (out["recurrent_key_heads"], out["recurrent_key_dim"], out["recurrent_value_heads"],
            out["recurrent_value_dim"]) == (1, 128, 48, 64)


def test_mamba2_parameters_follow_its_reference_block():
    """in_proj to z, x, B, C and dt; a biased depthwise convolution over x, B and C; A_log, D and
    dt_bias per head; the gated norm over the inner width; out_proj (Dao & Gu 2024 §7)."""
    m = replace(builtin_model("llama3-8b"), recurrent=Recurrent.MAMBA2, recurrent_key_heads=8, recurrent_key_dim=128,
                recurrent_value_heads=128, recurrent_value_dim=64, attention_every=4)
    inner, conv_dim = 128 * 64, 128 * 64 + 2 * 8 * 128
    assert m.recurrent_params() == (4096 * (2 * inner + 2 * 8 * 128 + 128) + conv_dim * 5 + 3 * 128 + inner
                                    + inner * 4096)
    assert m.recurrent_chunk == 256 and m.recurrent_layers == 24


@pytest.mark.parametrize("recurrent", [Recurrent.GATED_DELTANET, Recurrent.MAMBA2])
def test_scan_flops_follow_the_chunked_algorithms(recurrent):
    """Per token and value head, with chunk Q and key / value widths K, V: GDN Q(6K + 4V) + Q²/3 +
    6KV; Mamba-2 2QV + 4KV plus 2QK per key head. A decode step is a chunk of one token."""
    m = replace(QN, recurrent=recurrent, recurrent_chunk=64)
    pre = _op(_wl(m, mode=Mode.PREFILL, batch=2, seq=1024), "lin_scan")
    one = _op(_wl(m, batch=2), "lin_scan")
    K = V = 128
    if recurrent is Recurrent.GATED_DELTANET:
        per = lambda q: 32 * (q * (6 * K + 4 * V) + q * q / 3 + 6 * K * V)
    else:
        per = lambda q: 32 * (2 * q * V + 4 * K * V) + 16 * 2 * q * K
    assert pre.flops == pytest.approx(2 * 1024 * per(64))
    assert one.flops == pytest.approx(2 * per(1))
    assert pre.shape["launches"] > 1 and one.shape["launches"] == 1


def test_decode_reads_and_writes_the_state_and_not_a_growing_cache():
    """A decode step's scan reads and writes each sequence's fp32 state (32 heads of 128 x 128);
    its bytes, unlike an attention layer's, do not grow with the context."""
    short, long_ = _op(_wl(QN, tp=2, batch=8, seq=1024), "lin_scan"), _op(_wl(QN, tp=2, batch=8, seq=65536), "lin_scan")
    state = 8 * 16 * 128 * 128 * 4
    assert short.bytes == long_.bytes
    assert short.bytes == pytest.approx(2 * state + 8 * (8192 // 2 + 16 * 2 + 2048) * 2)
    a_short, a_long = _op(_wl(QN, tp=2, batch=8, seq=1024), "attn."), _op(_wl(QN, tp=2, batch=8, seq=65536), "attn.")
    assert a_long.bytes > 30 * a_short.bytes


def test_kv_cache_covers_the_attention_layers_and_a_state_per_sequence():
    """12 attention layers x 2 KV heads x 256 x 2 per token, split by KV heads; each sequence's
    recurrent state (36 layers x 32 x 128 x 128 at fp32, and the convolutions' last 3 inputs) split by
    value heads."""
    assert QN.kv_elements_per_token() == 12 * 2 * 2 * 256
    states, conv = QN.recurrent_state_elements()
    assert (states, conv) == (36 * 32 * 128 * 128, 36 * 8192 * 3)
    per_seq = states * 4 + conv * 2
    for seq in (1024, 32768):
        wl = _wl(QN, tp=2, batch=4, seq=seq)
        tokens = 4 * (seq + 2)
        assert kv_cache_bytes(wl) == pytest.approx(tokens * 12 * 2 * 256 * 2 * 2 / 2 + 4 * per_seq / 2)


def test_decode_step_grows_with_context_on_the_attention_layers_only():
    """Going from 4k to 64k context adds attention reads on 12 of 48 layers: a quarter of what
    the same model with attention on every layer adds (GPU time: no engine overheads)."""
    from simhw import estimate
    from simhw.spec.load import load_hw
    from simhw.workload.spec import EngineOptions
    h100 = load_hw("h100")
    dense = replace(QN, recurrent=Recurrent.NONE, attention_every=0)
    gpu_only = EngineOptions(0.0, 0.0, 0.0, 0.0)

    def growth(model):
        return (estimate(replace(_wl(model, tp=4, batch=16, seq=65536), engine=gpu_only), h100).step_time_s
                - estimate(replace(_wl(model, tp=4, batch=16, seq=4096), engine=gpu_only), h100).step_time_s)
    assert growth(QN) / growth(dense) == pytest.approx(0.25, abs=0.05)


def test_training_keeps_the_mean_layers_tensors():
    wl = _wl(QN, mode=Mode.TRAIN, tp=2, batch=1, seq=1024)
    per_token = saved_tensor_bytes(wl)["qkv"] / 1024 / 2
    gdn = 2 * 8192 / 2 + 16 * (128 + 2)
    gqa = (2 * 16 * 256 + 2 * 2 * 256) / 2
    assert per_token == pytest.approx((36 * gdn + 12 * gqa) / 48)
    assert memory_breakdown(wl).activations_bytes > 0


@pytest.mark.parametrize("mode, pp", [(Mode.PREFILL, 1), (Mode.DECODE, 1), (Mode.TRAIN, 2), (Mode.PREFILL, 3)])
def test_simulation_and_compact_graph_agree_with_the_estimate(mode, pp):
    from simhw import estimate, simulate
    from simhw.spec.load import load_hw
    model = QN if mode is not Mode.TRAIN else replace(QN, layers=8, experts=16, vocab=32000)
    wl = _wl(model, mode=mode, tp=2 if mode is not Mode.TRAIN else 1, pp=pp, batch=2)
    full, compact = build_graph(wl), build_graph(wl, compact=True)
    for attr in ("flops", "bytes"):
        assert sum(getattr(op, attr) * op.count for op in compact.ops) == pytest.approx(
            sum(getattr(op, attr) * op.count for op in full.ops), rel=1e-12)
    scans = [op for op in full.ops if op.kind is OpKind.SCAN and op.phase is Phase.FWD]
    assert len(scans) == model.recurrent_layers + (wl.decode.speculative_tokens if mode is Mode.DECODE else 0)
    assert all(model.is_recurrent(op.layer) for op in scans)
    h100 = load_hw("h100")
    assert simulate(wl, h100).step_time_s == pytest.approx(estimate(wl, h100).step_time_s, rel=0.02)


@pytest.mark.parametrize("change, needle", [
    ({"model": {"base": "qwen3-next-80b-a3b", "recurrent_value_dim": 0}}, "recurrent_value_dim: missing"),
    ({"model": {"base": "qwen3-next-80b-a3b", "attention_offset": 4}}, "attention_offset: 4 must be"),
    ({"model": {"base": "llama2-7b", "attention_every": 4}}, "set recurrent"),
    ({"model": {"base": "qwen3-next-80b-a3b", "recurrent": "mamba3"}}, "recurrent: 'mamba3' is not allowed"),
    ({"model": {"base": "qwen3-next-80b-a3b", "recurrent_key_heads": 5}}, "does not divide"),
    ({"model": {"base": "qwen3-next-80b-a3b", "recurrent_state_bits": 64}}, "more than 32"),
    ({"model": {"base": "llama2-7b", "tied_embeddings": "no"}}, "tied_embeddings: expected true or false"),
    ({"parallelism": {"cp": 2}, "devices": 2}, "parallelism.cp: context parallelism over"),
])
def test_recurrent_model_errors_name_the_key(change, needle):
    from simhw.errors import WorkloadError
    from simhw.workload.from_yaml import workload_from_dict
    raw = {"name": "x", "model": "qwen3-next-80b-a3b", "mode": "prefill", "seq_len": 1024, "micro_batch": 1,
           **change}
    with pytest.raises(WorkloadError, match=needle):
        workload_from_dict(raw)


def test_models_show_gives_the_recurrent_state(capsys):
    from simhw.cli import main
    assert main(["models", "show", "qwen3-next-80b-a3b"]) == 0
    out = capsys.readouterr().out
    assert "Gated DeltaNet on 36 of 48 layers" in out and "73.7 MiB" in out


NEMOTRON_H = {"model_type": "nemotron_h", "architectures": ["NemotronHForCausalLM"], "num_hidden_layers": 56,
              "hidden_size": 4480, "intermediate_size": 15680, "num_attention_heads": 40, "num_key_value_heads": 8,
              "head_dim": 128, "vocab_size": 131072, "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
              "mlp_hidden_act": "relu2", "use_bias": False,
              "hybrid_override_pattern": "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-",
              "ssm_state_size": 128, "conv_kernel": 4, "n_groups": 8, "mamba_num_heads": 128, "mamba_head_dim": 80,
              "chunk_size": 128}


def _nemotron(tmp_path):
    from simhw.workload.from_yaml import model_from_mapping
    (tmp_path / "config.json").write_text(json.dumps(NEMOTRON_H))
    return model_from_mapping({"hf_config": "config.json"}, tmp_path)


def test_nemotron_h_blocks_hold_one_sublayer_each(tmp_path):
    """hybrid_override_pattern: 27 Mamba-2 blocks, 4 attention blocks, 25 MLP blocks (squared-ReLU,
    two matrices), each with its own pre-norm; the KV cache covers the 4 attention blocks only."""
    m = _nemotron(tmp_path)
    assert (m.layers, m.recurrent_layers, m.attention_layers, m.ffn_layers) == (56, 27, 4, 25)
    assert m.recurrent is Recurrent.MAMBA2 and m.recurrent_chunk == 128 and not m.activation.gated and not m.bias
    inner, conv_dim = 128 * 80, 128 * 80 + 2 * 8 * 128
    mamba = 4480 * (2 * inner + 2 * 8 * 128 + 128) + conv_dim * 5 + 3 * 128 + inner + inner * 4480 + 4480
    attention = 4480 * 40 * 128 * 2 + 2 * 4480 * 8 * 128 + 4480
    mlp = 2 * 4480 * 15680 + 4480
    embed = 2 * 131072 * 4480 + 4480
    assert m.params() == 27 * mamba + 4 * attention + 25 * mlp + embed
    assert m.kv_elements_per_token() == 4 * 2 * 8 * 128
    ops = build_graph(_wl(m, mode=Mode.PREFILL, batch=1, seq=512)).ops
    names = {op.name.split(".")[0] for op in ops if op.layer == 0}
    assert "lin_scan" in names and "mlp_up" not in names and "attn" not in names
    names = {op.name.split(".")[0] for op in ops if op.layer == 1}
    assert names == {"mlp_norm", "mlp_up", "mlp_act", "mlp_down", "residual2"}


@pytest.mark.parametrize("mode, pp", [(Mode.PREFILL, 1), (Mode.DECODE, 2), (Mode.TRAIN, 2)])
def test_block_patterns_simulate_as_estimated(tmp_path, mode, pp):
    from simhw import estimate, simulate
    from simhw.spec.load import load_hw
    m = _nemotron(tmp_path)
    if mode is Mode.TRAIN:
        m = replace(m, layers=8, block_pattern="M-M*-M-E", experts=8, experts_per_token=2, expert_ffn=1024,
                    vocab=32000)
    wl = _wl(m, mode=mode, pp=pp, batch=2)
    full, compact = build_graph(wl), build_graph(wl, compact=True)
    assert sum(op.flops * op.count for op in compact.ops) == pytest.approx(sum(op.flops for op in full.ops), rel=1e-12)
    h100 = load_hw("h100")
    assert simulate(wl, h100).step_time_s == pytest.approx(estimate(wl, h100).step_time_s, rel=0.02)
    if mode is Mode.TRAIN:   # one device holds every block's weights (pp = 1)
        assert memory_breakdown(replace(wl, parallelism=Parallelism(), devices=1, global_batch=2)).parameters_bytes \
            == pytest.approx(2 * m.params(), rel=1e-12)


@pytest.mark.parametrize("pattern, needle", [("M-M*-M", "for each of the 8 layers"), ("M-M*-MX-", "for each of"),
                                             ("M-M*-ME-", "E blocks need experts"),
                                             ("M-M*-M-M", "attention_every and dense_layers do not apply")])
def test_block_pattern_errors(pattern, needle):
    from simhw.errors import WorkloadError
    from simhw.workload.from_yaml import workload_from_dict
    model = {"base": "llama3-8b", "layers": 8, "recurrent": "mamba2", "recurrent_key_heads": 1, "recurrent_key_dim": 128,
             "recurrent_value_heads": 64, "recurrent_value_dim": 64, "block_pattern": pattern}
    if needle.startswith("attention_every"):
        model["attention_every"] = 4
    with pytest.raises(WorkloadError, match=needle):
        workload_from_dict({"name": "x", "model": model, "mode": "prefill", "seq_len": 512, "micro_batch": 1})


def test_gated_deltanet_prefill_scan_against_published_b200_kernel_times():
    """The scan's time grows with each sequence's chunk count times the waves of (sequence, head,
    value block) CTAs, not with its bytes alone: the b200 spec's scan_step_latency reproduces the
    published kernel times (the roofline alone is 2-2.5x fast)."""
    import csv
    from pathlib import Path

    from simhw.cost.roofline import op_cost, scan_chain_s
    from simhw.spec.load import load_hw
    b200 = load_hw("b200")
    # flashinfer PR #2742's B200 rows, transcribed in validate/data/published/ (its README)
    path = Path(__file__).resolve().parents[2] / "validate" / "data" / "published" / "flashinfer-gdn-b200.csv"
    published = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(published) == 6
    errors = []
    for row in published:
        batch, seq, heads = (int(row[k]) for k in ("batch", "seq_q", "heads"))
        m = replace(QN, recurrent_key_heads=heads, recurrent_value_heads=heads)
        op = _op(_wl(m, mode=Mode.PREFILL, batch=batch, seq=seq), "lin_scan")
        assert op.shape["steps"] == seq // 64
        measured = float(row["measured_s"])
        errors.append(op_cost(op, b200).time_s / measured - 1)
        assert scan_chain_s(op, b200) > 0.4 * measured
    errors.sort(key=abs)
    assert abs(errors[len(errors) // 2]) < 0.05 and abs(errors[-1]) < 0.15
    # a decode step and Mamba-2's elementwise state passing carry no chain
    assert scan_chain_s(_op(_wl(QN, batch=8), "lin_scan"), b200) == 0.0
    mamba = replace(QN, recurrent=Recurrent.MAMBA2, recurrent_chunk=256)
    assert scan_chain_s(_op(_wl(mamba, mode=Mode.PREFILL, seq=4096), "lin_scan"), b200) == 0.0


def test_validate_and_calibrate_scan_rows(tmp_path):
    """`simhw validate` reads kind scan rows as the op the estimates price; `simhw calibrate` fits
    scan_step_latency on them (here: recovering a perturbed value from synthetic rows)."""
    from simhw.calibrate import calibrate, with_efficiency
    from simhw.cost.roofline import op_cost
    from simhw.spec.load import load_hw
    from simhw.validation.predict import predict_s
    from simhw.validation.schema import parse_lines
    b200 = load_hw("b200")
    shapes = [(b, t, h) for b in (1, 2, 4, 8) for t in (512, 1024, 2048, 4096, 8192) for h in (16, 32, 64)]
    text = "kind,measured_s,batch,seq_q,heads,kv_heads,head_dim,dtype,label\n" + "".join(
        f"scan,1,{b},{t},{h},{h // 2},128,bf16,b{b}t{t}h{h}\n" for b, t, h in shapes) + "scan,1,1,1,3,2,128,bf16,bad\n"
    rows, bad = parse_lines(text.splitlines(True))
    assert len(rows) == len(shapes) and bad[0].line == len(shapes) + 2 and "kv_heads dividing" in bad[0].reason
    # the row's op is the one a Qwen3-Next-shaped layer prices
    m = replace(QN, recurrent_key_heads=16, recurrent_value_heads=32)
    layer = _op(_wl(m, mode=Mode.PREFILL, batch=2, seq=2048), "lin_scan")
    row = next(r for r in rows if r.label == "b2t2048h32")
    assert predict_s(row, b200) == pytest.approx(op_cost(layer, b200).time_s, rel=1e-12)
    truth = with_efficiency(b200, scan_step_latency_s=2.5e-6)
    measured = "".join(f"scan,{predict_s(r, truth)},{b},{t},{h},{h // 2},128,bf16,b{b}t{t}h{h}\n"
                       for r, (b, t, h) in zip(rows, shapes))
    rows, _ = parse_lines(("kind,measured_s,batch,seq_q,heads,kv_heads,head_dim,dtype,label\n" + measured).splitlines(True))
    result = calibrate(rows, b200, params=["scan_step_latency_s"])
    assert result.params["scan_step_latency_s"][1] == pytest.approx(2.5e-6, rel=0.02)
