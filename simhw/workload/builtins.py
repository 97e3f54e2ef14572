"""The built-in model registry: public configurations as :class:`ModelConfig` values.

Korthikanti et al. 2022 (arXiv 2205.05198) Table 3 for the GPT models; the Hugging Face
``config.json`` of each released model for the others (each entry's ``source``); MEMO (arXiv
2407.12117) Table 2 for its models.
"""
from __future__ import annotations

from dataclasses import replace

from .models import Activation, ModelConfig, Norm, Position, Recurrent


def _gpt(name, heads, hidden, layers, source, vocab=51200, ffn=None) -> ModelConfig:
    return ModelConfig(name=name, layers=layers, hidden=hidden, heads=heads, ffn=ffn or 4 * hidden,
                       vocab=vocab, activation=Activation.GELU, norm=Norm.LAYERNORM,
                       position=Position.LEARNED, bias=True, dropout=True, max_positions=2048,
                       source=source)


def _llama(name, layers, hidden, heads, kv, ffn, vocab, source, head_dim=0, tied=False,
           act=Activation.SWIGLU) -> ModelConfig:
    return ModelConfig(name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=kv, ffn=ffn,
                       vocab=vocab, head_dim=head_dim, activation=act, norm=Norm.RMSNORM,
                       position=Position.ROPE, tied_embeddings=tied, source=source)


_K = "Korthikanti et al. 2022 (arXiv 2205.05198) Table 3"
_G2 = ("; Gemma 2 alternates local sliding-window (4096 tokens) and global attention layers, the first "
       "local (Gemma Team 2024, arXiv 2408.00118, §2 and Table 1)")
_HF = "Hugging Face config.json of "
_MEMO = "MEMO (arXiv 2407.12117) Table 2"

BUILTIN: dict[str, ModelConfig] = {m.name: m for m in (
    _gpt("gpt-22b", 64, 6144, 48, _K),
    _gpt("gpt3-175b", 96, 12288, 96, _K),
    _gpt("mt-nlg-530b", 128, 20480, 105, _K),
    _gpt("gpt-1t", 160, 25600, 128, _K),
    _gpt("memo-7b", 32, 4096, 32, _MEMO, vocab=50257),
    _gpt("memo-13b", 40, 5120, 40, _MEMO, vocab=50257),
    _gpt("memo-30b", 56, 7168, 48, _MEMO, vocab=50257),
    _gpt("memo-65b", 64, 8192, 80, _MEMO, vocab=50257),
    _llama("llama2-7b", 32, 4096, 32, 32, 11008, 32000, _HF + "meta-llama/Llama-2-7b-hf"),
    _llama("llama2-13b", 40, 5120, 40, 40, 13824, 32000, _HF + "meta-llama/Llama-2-13b-hf"),
    _llama("llama2-70b", 80, 8192, 64, 8, 28672, 32000, _HF + "meta-llama/Llama-2-70b-hf"),
    _llama("llama3-8b", 32, 4096, 32, 8, 14336, 128256, _HF + "meta-llama/Meta-Llama-3-8B"),
    _llama("llama3-70b", 80, 8192, 64, 8, 28672, 128256, _HF + "meta-llama/Meta-Llama-3-70B"),
    _llama("llama3.1-405b", 126, 16384, 128, 8, 53248, 128256, _HF + "meta-llama/Llama-3.1-405B (405 B parameters: "
           "Llama 3 paper, arXiv 2407.21783, Table 3)"),
    replace(_llama("mistral-7b", 32, 4096, 32, 8, 14336, 32000, _HF + "mistralai/Mistral-7B-v0.1 (a 4096-token "
                   "sliding window on every layer)"), sliding_window=4096),
    replace(_llama("gemma2-2b", 26, 2304, 8, 4, 9216, 256000, _HF + "google/gemma-2-2b" + _G2, head_dim=256,
           tied=True, act=Activation.GEGLU), sliding_window=4096, global_every=2),
    _llama("codellama-34b", 48, 8192, 64, 8, 22016, 32000, _HF + "codellama/CodeLlama-34b-hf"),
    _llama("mistral-nemo-12b", 40, 5120, 32, 8, 14336, 131072, _HF + "mistralai/Mistral-Nemo-Instruct-2407",
           head_dim=128),
    _llama("mistral-large-123b", 88, 12288, 96, 8, 28672, 32768, _HF + "mistralai/Mistral-Large-Instruct-2407",
           head_dim=128),
    _llama("phi3-mini", 32, 3072, 32, 32, 8192, 32064, _HF + "microsoft/Phi-3-mini-4k-instruct"),
    _llama("phi3-medium", 40, 5120, 40, 10, 17920, 32064, _HF + "microsoft/Phi-3-medium-4k-instruct"),
    _llama("gemma-2b", 18, 2048, 8, 1, 16384, 256000, _HF + "google/gemma-2b (CodeGemma 1.1 2B has its layers)",
           head_dim=256, tied=True, act=Activation.GEGLU),
    _llama("gemma-7b", 28, 3072, 16, 16, 24576, 256000, _HF + "google/gemma-7b (CodeGemma 7B has its layers)",
           head_dim=256, tied=True, act=Activation.GEGLU),
    replace(_llama("gemma2-9b", 42, 3584, 16, 8, 14336, 256000, _HF + "google/gemma-2-9b" + _G2, head_dim=256,
           tied=True, act=Activation.GEGLU), sliding_window=4096, global_every=2),
    replace(_llama("gemma2-27b", 46, 4608, 32, 16, 36864, 256000, _HF + "google/gemma-2-27b" + _G2, head_dim=128,
           tied=True, act=Activation.GEGLU), sliding_window=4096, global_every=2),
    _llama("qwen2-7b", 28, 3584, 28, 4, 18944, 152064, _HF + "Qwen/Qwen2-7B (its Q, K, V biases are left out: 0.01% of "
           "the weights)"),
    _llama("qwen3-0.6b", 28, 1024, 16, 8, 3072, 151936, _HF + "Qwen/Qwen3-0.6B", head_dim=128, tied=True),
    _llama("qwen3-1.7b", 28, 2048, 16, 8, 6144, 151936, _HF + "Qwen/Qwen3-1.7B", head_dim=128, tied=True),
    _llama("qwen3-4b", 36, 2560, 32, 8, 9728, 151936, _HF + "Qwen/Qwen3-4B", head_dim=128, tied=True),
    _llama("qwen3-8b", 36, 4096, 32, 8, 12288, 151936, _HF + "Qwen/Qwen3-8B", head_dim=128),
    _llama("qwen3-14b", 40, 5120, 40, 8, 17408, 151936, _HF + "Qwen/Qwen3-14B", head_dim=128),
    _llama("qwen3-32b", 64, 5120, 64, 8, 25600, 151936, _HF + "Qwen/Qwen3-32B", head_dim=128),
    ModelConfig(name="mixtral-8x7b", layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=32000,
                activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE, experts=8,
                experts_per_token=2, source=_HF + "mistralai/Mixtral-8x7B-v0.1"),
    ModelConfig(name="mixtral-8x22b", layers=56, hidden=6144, heads=48, kv_heads=8, ffn=16384, vocab=32768,
                activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE, experts=8,
                experts_per_token=2, source=_HF + "mistralai/Mixtral-8x22B-Instruct-v0.1"),
    ModelConfig(name="qwen3-30b-a3b", layers=48, hidden=2048, heads=32, kv_heads=4, head_dim=128, ffn=6144,
                vocab=151936, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=128, experts_per_token=8, expert_ffn=768, source=_HF + "Qwen/Qwen3-30B-A3B"),
    # multi-head latent attention and DeepSeekMoE with dense leading layers; the checkpoint's one
    # multi-token prediction module (num_nextn_predict_layers 1, technical report §2.2) is trained
    # with the model (mtp_layers) and is not in its 671 B main-model parameters (37 B activated)
    ModelConfig(name="deepseek-v3", layers=61, hidden=7168, heads=128, kv_heads=128, head_dim=192, ffn=18432,
                vocab=129280, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=256, experts_per_token=8, expert_ffn=2048, shared_expert_ffn=2048, dense_layers=3,
                kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64, v_head_dim=128, mtp_layers=1,
                source=_HF + "deepseek-ai/DeepSeek-V3; DeepSeek-V3 technical report (arXiv 2412.19437) §2, §4.2"),
    ModelConfig(name="deepseek-v3.2", layers=61, hidden=7168, heads=128, kv_heads=128, head_dim=192, ffn=18432,
                vocab=129280, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=256, experts_per_token=8, expert_ffn=2048, shared_expert_ffn=2048, dense_layers=3,
                kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64, v_head_dim=128,
                index_topk=2048, index_heads=64, index_head_dim=128, mtp_layers=1,
                source=_HF + "deepseek-ai/DeepSeek-V3.2-Exp (DeepseekV32Config: index_topk 2048, index_n_heads 64, "
                       "index_head_dim 128); DeepSeek-V3 plus the lightning indexer, DeepSeek-V3.2-Exp report §2"),
    ModelConfig(name="kimi-k2", layers=61, hidden=7168, heads=64, kv_heads=64, head_dim=192, ffn=18432,
                vocab=163840, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=384, experts_per_token=8, expert_ffn=2048, shared_expert_ffn=2048, dense_layers=1,
                kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64, v_head_dim=128,
                source=_HF + "moonshotai/Kimi-K2-Instruct (1 T parameters, 32 B activated: its model card)"),
    ModelConfig(name="deepseek-v2-lite", layers=27, hidden=2048, heads=16, kv_heads=16, head_dim=192, ffn=10944,
                vocab=102400, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=64, experts_per_token=6, expert_ffn=1408, shared_expert_ffn=2816, dense_layers=1,
                kv_lora_rank=512, rope_head_dim=64, v_head_dim=128,
                source=_HF + "deepseek-ai/DeepSeek-V2-Lite (15.7 B parameters, 2.4 B activated: its model card)"),
    ModelConfig(name="qwen3-235b-a22b", layers=94, hidden=4096, heads=64, kv_heads=4, head_dim=128, ffn=12288,
                vocab=151936, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=128, experts_per_token=8, expert_ffn=1536,
                source=_HF + "Qwen/Qwen3-235B-A22B (235 B parameters, 22 B activated: its model card)"),
    # hybrid: three Gated DeltaNet layers to one gated full-attention layer (80 B parameters, 3 B activated)
    ModelConfig(name="qwen3-next-80b-a3b", layers=48, hidden=2048, heads=16, kv_heads=2, head_dim=256, ffn=5120,
                vocab=151936, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=512, experts_per_token=10, expert_ffn=512, shared_expert_ffn=512, attention_gate=True,
                recurrent=Recurrent.GATED_DELTANET, attention_every=4, recurrent_key_heads=16,
                recurrent_key_dim=128, recurrent_value_heads=32, recurrent_value_dim=128, recurrent_conv=4,
                source=_HF + "Qwen/Qwen3-Next-80B-A3B-Instruct (80 B parameters, 3 B activated: its model card)"),
    # every layer routes to 4 experts; layers alternate a 128-token sliding window and full attention, the
    # first windowed; biases on the attention and expert linears (layer_types, attention_bias in config.json)
    ModelConfig(name="gpt-oss-120b", layers=36, hidden=2880, heads=64, kv_heads=8, head_dim=64, ffn=2880,
                vocab=201088, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=128, experts_per_token=4, expert_ffn=2880, sliding_window=128, global_every=2, bias=True,
                source=_HF + "openai/gpt-oss-120b (117 B parameters, 5.1 B activated: its model card)"),
    ModelConfig(name="gpt-oss-20b", layers=24, hidden=2880, heads=64, kv_heads=8, head_dim=64, ffn=2880,
                vocab=201088, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=32, experts_per_token=4, expert_ffn=2880, sliding_window=128, global_every=2, bias=True,
                source=_HF + "openai/gpt-oss-20b (21 B parameters, 3.6 B activated: its model card)"),
    ModelConfig(name="opt-6.7b", layers=32, hidden=4096, heads=32, ffn=16384, vocab=50272,
                activation=Activation.RELU, norm=Norm.LAYERNORM, position=Position.LEARNED,
                tied_embeddings=True, bias=True, dropout=True, max_positions=2050,
                source=_HF + "facebook/opt-6.7b"),
    ModelConfig(name="bert-base", layers=12, hidden=768, heads=12, ffn=3072, vocab=30522,
                activation=Activation.GELU, norm=Norm.LAYERNORM, position=Position.LEARNED,
                tied_embeddings=True, bias=True, dropout=True, causal=False, max_positions=512,
                source=_HF + "bert-base-uncased"),
    ModelConfig(name="bloom-176b", layers=70, hidden=14336, heads=112, ffn=4 * 14336, vocab=250880,
                activation=Activation.GELU, norm=Norm.LAYERNORM, position=Position.ALIBI,
                tied_embeddings=True, bias=True, source=_HF + "bigscience/bloom"),
)}

ALIASES = {"gpt3": "gpt3-175b", "22b": "gpt-22b", "175b": "gpt3-175b", "530b": "mt-nlg-530b",
           "1t": "gpt-1t", "llama-7b": "llama2-7b", "bloom": "bloom-176b"}


def builtin_model(name: str) -> ModelConfig | None:
    key = str(name).strip().lower()
    return BUILTIN.get(ALIASES.get(key, key))
