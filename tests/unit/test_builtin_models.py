"""Built-in models: parameter counts against the sizes their publishers state (model cards)."""
import pytest

from simhw.workload.builtins import BUILTIN


@pytest.mark.parametrize("name, billions", [
    ("llama2-7b", 6.74), ("llama2-13b", 13.0), ("llama2-70b", 69.0), ("llama3-8b", 8.03), ("llama3-70b", 70.6),
    ("mistral-7b", 7.24), ("gemma2-2b", 2.61), ("gemma2-9b", 9.24), ("gemma2-27b", 27.2), ("gemma-2b", 2.51),
    ("gemma-7b", 8.54), ("codellama-34b", 33.7), ("mistral-nemo-12b", 12.2), ("mistral-large-123b", 123.0),
    ("phi3-mini", 3.82), ("phi3-medium", 14.0), ("mixtral-8x7b", 46.7), ("mixtral-8x22b", 141.0),
    ("qwen3-8b", 8.19), ("qwen3-30b-a3b", 30.5), ("qwen2-7b", 7.62), ("llama3.1-405b", 405.0),
    ("qwen3-235b-a22b", 235.0), ("deepseek-v3", 671.0), ("deepseek-v2-lite", 15.7),
    ("gpt-oss-120b", 116.83), ("gpt-oss-20b", 20.91),     # OpenAI's gpt-oss model card, Table 1
])
def test_parameter_counts(name, billions):
    assert BUILTIN[name].params() / 1e9 == pytest.approx(billions, rel=0.02)


def test_every_builtin_cites_its_source():
    assert all(m.source for m in BUILTIN.values())


@pytest.mark.parametrize("name, billions", [("qwen3-30b-a3b", 3.3), ("qwen3-235b-a22b", 22.0),
                                            ("deepseek-v3", 37.0), ("kimi-k2", 32.0)])
def test_activated_parameter_counts(name, billions):
    assert BUILTIN[name].params(active=True) / 1e9 == pytest.approx(billions, rel=0.03)


def test_the_readme_counts_the_builtins():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert int(re.search(r"\*\*Models\*\*: (\d+) built-in", text).group(1)) == len(BUILTIN)


@pytest.mark.parametrize("name, billions", [("gpt-oss-120b", 5.13), ("gpt-oss-20b", 3.61)])
def test_gpt_oss_active_parameters_without_the_embedding(name, billions):
    """OpenAI's model card counts the active parameters without the input embedding (the
    unembedding included)."""
    m = BUILTIN[name]
    assert (m.params(active=True) - m.vocab * m.hidden) / 1e9 == pytest.approx(billions, rel=0.02)
