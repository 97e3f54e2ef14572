"""``simhw models list`` / ``simhw models show``: the built-in registry and Hugging Face configs,
with the figures costs start from; bad names and configs are one-line errors (exit 2)."""
import json

from simhw.cli import main
from simhw.workload.builtins import BUILTIN, builtin_model


def test_list_has_every_builtin_with_its_sizes(capsys):
    assert main(["models", "list", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(BUILTIN)
    assert rows["deepseek-v3"]["params"] == "671.03 B" and rows["deepseek-v3"]["active params"] == "37.55 B"
    assert rows["gemma2-9b"]["attention"] == "GQA (8 KV heads), window 4096 on 21 of 42 layers"
    assert rows["kimi-k2"]["attention"].startswith("MLA")


def test_show_gives_the_kv_cache_per_token(capsys):
    assert main(["models", "show", "llama2-70b", "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    per_token = builtin_model("llama2-70b").kv_elements_per_token()
    assert per_token == 2 * 80 * 8 * 128 and str(per_token) in info["kv cache per token"]
    assert info["layers"] == 80 and info["source"].startswith("Hugging Face")
    assert "multi-token prediction" not in info


def test_show_names_deepseek_v3s_mtp_module(capsys):
    assert main(["models", "show", "deepseek-v3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["multi-token prediction"].startswith("1 module, trained")


def test_show_reads_a_hugging_face_config(tmp_path, capsys):
    cfg = {"architectures": ["MistralForCausalLM"], "hidden_size": 512, "num_attention_heads": 8,
           "num_key_value_heads": 2, "num_hidden_layers": 4, "intermediate_size": 1024, "vocab_size": 1000,
           "hidden_act": "silu", "sliding_window": 256, "rms_norm_eps": 1e-5}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert main(["models", "show", str(tmp_path / "config.json")]) == 0
    out = capsys.readouterr().out
    assert "GQA (2 KV heads), window 256 on all layers" in out and "swiglu 1024" in out


def test_bad_names_and_configs_are_one_line_errors(tmp_path, capsys):
    assert main(["models", "show", "deepsek-v3"]) == 2
    err = capsys.readouterr().err
    assert "deepseek-v3" in err and "simhw models list" in err and "Traceback" not in err
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    assert main(["models", "show", str(tmp_path / "config.json")]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "model.layers" in err and "Traceback" not in err
    assert main(["models"]) == 2
