"""Transformer architectures: the frozen :class:`ModelConfig` and the built-in model registry.

Values are the public configurations: Korthikanti et al. 2022 (arXiv 2205.05198) Table 3 for the
GPT models; the Hugging Face ``config.json`` of each released model for the others; MEMO (arXiv
2407.12117) Table 2 for its models.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Activation(Enum):
    GELU = "gelu"
    RELU = "relu"
    SWIGLU = "swiglu"       # silu(x W_gate) * (x W_up): three FFN matrices
    GEGLU = "geglu"         # gelu(x W_gate) * (x W_up): three FFN matrices

    @property
    def gated(self) -> bool:
        return self in (Activation.SWIGLU, Activation.GEGLU)


class Norm(Enum):
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"


class Recurrent(Enum):
    """A layer's token mixer when it is not softmax attention: a recurrence over a fixed-size
    state per sequence, run as a chunked parallel scan over a sequence and one step per token."""
    NONE = "none"
    GATED_DELTANET = "gated_deltanet"   # Gated DeltaNet linear attention (Yang et al. 2024, arXiv 2412.06464):
                                        # Qwen3-Next, Qwen3.5 (their "linear_attention" layers)
    MAMBA2 = "mamba2"                   # Mamba-2's state-space duality (Dao & Gu 2024, arXiv 2405.21060):
                                        # Granite 4.0-H, Nemotron-H mixers


class Position(Enum):
    ROPE = "rope"
    LEARNED = "learned"
    ALIBI = "alibi"
    NONE = "none"


@dataclass(frozen=True)
class ModelConfig:
    """A decoder (or encoder) transformer. Sizes are element counts."""

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    kv_heads: int = 0                 # 0 -> same as heads (multi-head attention)
    head_dim: int = 0                 # 0 -> hidden // heads
    activation: Activation = Activation.GELU
    norm: Norm = Norm.LAYERNORM
    position: Position = Position.LEARNED
    tied_embeddings: bool = False
    bias: bool = False                # linear layers carry biases
    dropout: bool = False             # training keeps dropout masks (Korthikanti counts them)
    causal: bool = True               # False for encoders (BERT)
    max_positions: int = 0
    experts: int = 0                  # routed experts per FFN (mixture of experts); 0 -> dense FFN
    experts_per_token: int = 0        # experts each token is routed to (top-k)
    expert_ffn: int = 0               # FFN width of one expert; 0 -> ffn
    shared_expert_ffn: int = 0        # FFN width of the shared experts together, which every token also
                                      # passes (DeepSeekMoE, Dai et al. 2024; Qwen-MoE); 0 -> none
    dense_layers: int = 0             # leading layers of a mixture of experts with a dense FFN of width ffn
                                      # (DeepSeek's first_k_dense_replace); 0 -> every layer routes
    kv_lora_rank: int = 0             # multi-head latent attention (DeepSeek-V2, arXiv 2405.04434 §2.1): width
                                      # of the cached KV latent c_KV; 0 -> standard (grouped-query) attention
    q_lora_rank: int = 0              # MLA: width of the query latent c_Q; 0 -> a full-rank query projection
    rope_head_dim: int = 0            # MLA: decoupled RoPE dims per head of q and of the one shared RoPE key
                                      # (qk_rope_head_dim); head_dim is then qk_nope_head_dim + rope_head_dim
    v_head_dim: int = 0               # MLA: value dims per head; 0 -> head_dim
    sliding_window: int = 0           # keys a query sees in a windowed layer (Mistral 7B v0.1, Gemma 2); 0 -> none
    global_every: int = 0             # with sliding_window: every global_every-th layer (i % k == k - 1) attends
                                      # to all keys, the others in the window (Gemma 2, gpt-oss: 2; Gemma 3: 6);
                                      # 0 -> every layer is windowed
    attention_gate: bool = False      # the query projection also emits a per-element sigmoid gate on the
                                      # attention output (gated attention: Qwen3-Next's full-attention layers)
    recurrent: Recurrent = Recurrent.NONE   # recurrent (linear-attention / state-space) mixer of the other layers
    attention_every: int = 0          # with a recurrent mixer: layer i attends (softmax) when i % attention_every ==
                                      # attention_offset, the rest recur (Qwen3-Next: 4, 3); 0 -> every layer recurs
    attention_offset: int = -1        # -1 -> attention_every - 1 (Jamba's attn_layer_offset: 4 of period 8)
    recurrent_key_heads: int = 0      # query/key heads of the recurrence (GDN: linear_num_key_heads; Mamba-2:
                                      # n_groups of B and C)
    recurrent_key_dim: int = 0        # their width (GDN: linear_key_head_dim; Mamba-2: ssm_state_size)
    recurrent_value_heads: int = 0    # value heads, each with a key_dim x value_dim state (GDN:
                                      # linear_num_value_heads; Mamba-2: mamba_num_heads)
    recurrent_value_dim: int = 0      # (GDN: linear_value_head_dim; Mamba-2: mamba_head_dim)
    recurrent_conv: int = 4           # taps of the causal depthwise convolution before the recurrence
    recurrent_chunk: int = 0          # tokens per chunk of the parallel scan; 0 -> the kernels' 64 (GDN:
                                      # flash-linear-attention) or 256 (Mamba-2: mamba_ssm's chunk_size)
    recurrent_state_bits: int = 32    # bits per recurrent-state element kept between decode steps (fp32:
                                      # Qwen3.5's mamba_ssm_dtype, vLLM's default for these caches)
    source: str = ""

    def __post_init__(self):
        if self.kv_heads == 0:
            object.__setattr__(self, "kv_heads", self.heads)
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.experts and self.expert_ffn == 0:
            object.__setattr__(self, "expert_ffn", self.ffn)
        if self.v_head_dim == 0 or not self.mla:     # standard attention: values as wide as keys
            object.__setattr__(self, "v_head_dim", self.head_dim)
        if self.attention_every and self.attention_offset < 0:
            object.__setattr__(self, "attention_offset", self.attention_every - 1)
        if self.recurrent is not Recurrent.NONE and self.recurrent_chunk == 0:
            object.__setattr__(self, "recurrent_chunk", 256 if self.recurrent is Recurrent.MAMBA2 else 64)

    @property
    def mla(self) -> bool:
        """Multi-head latent attention: K and V are up-projected from a cached latent (kv_lora_rank > 0)."""
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is the mixture of experts (all but the dense_layers leading ones)."""
        return self.layers - self.dense_layers if self.moe else 0

    def is_moe_layer(self, layer: int) -> bool:
        return self.moe and layer >= self.dense_layers

    def is_recurrent(self, layer: int) -> bool:
        """Whether ``layer`` mixes tokens by its recurrence rather than by softmax attention."""
        if self.recurrent is Recurrent.NONE:
            return False
        return not self.attention_every or layer % self.attention_every != self.attention_offset

    @property
    def recurrent_layers(self) -> int:
        return sum(self.is_recurrent(i) for i in range(self.layers))

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention, which keep a KV cache."""
        return self.layers - self.recurrent_layers

    def is_windowed(self, layer: int) -> bool:
        """Whether ``layer`` attends to a sliding window of keys rather than all of them."""
        if not self.sliding_window or self.is_recurrent(layer):
            return False
        return not self.global_every or layer % self.global_every != self.global_every - 1

    @property
    def windowed_layers(self) -> int:
        return sum(self.is_windowed(i) for i in range(self.layers))

    def layer_kind(self, layer: int) -> tuple[bool, bool, bool]:
        """What makes layers differ: (routes to experts, attends in a window, recurs)."""
        return self.is_moe_layer(layer), self.is_windowed(layer), self.is_recurrent(layer)

    @property
    def recurrent_conv_dim(self) -> int:
        """Channels of the recurrence's convolution: its queries, keys and values (GDN's q, k, v;
        Mamba-2's C, B, x)."""
        return 2 * self.recurrent_key_heads * self.recurrent_key_dim + self.recurrent_value_heads * self.recurrent_value_dim

    @property
    def recurrent_gates(self) -> int:
        """Scalars per value head and token from the input projection: GDN's beta and decay alpha,
        Mamba-2's time step dt."""
        return 2 if self.recurrent is Recurrent.GATED_DELTANET else 1

    @property
    def recurrent_in_width(self) -> int:
        """Outputs of the recurrent layer's input projection: convolution channels, the output gate z
        (value_heads x value_dim) and the per-head gates."""
        return self.recurrent_conv_dim + self.recurrent_value_heads * (self.recurrent_value_dim + self.recurrent_gates)

    def recurrent_params(self) -> int:
        """Weights of one recurrent mixer: input projection, convolution (Mamba-2's with a bias), per-head
        decay and time-step scalars (Mamba-2 also D), the gated output norm (GDN's shared over heads),
        the output projection (Qwen3-Next's modeling code; Mamba-2's reference block)."""
        hv, dv = self.recurrent_value_heads, self.recurrent_value_dim
        mamba = self.recurrent is Recurrent.MAMBA2
        conv = self.recurrent_conv_dim * (self.recurrent_conv + mamba)
        return (self.hidden * self.recurrent_in_width + conv + (3 if mamba else 2) * hv
                + (hv * dv if mamba else dv) + hv * dv * self.hidden)

    def recurrent_state_elements(self) -> tuple[int, int]:
        """(recurrent-state, convolution-state) elements one sequence keeps over all recurrent layers:
        a key_dim x value_dim matrix per value head, and the last recurrent_conv - 1 inputs of each
        convolution channel."""
        layers = self.recurrent_layers
        return (layers * self.recurrent_value_heads * self.recurrent_key_dim * self.recurrent_value_dim,
                layers * self.recurrent_conv_dim * (self.recurrent_conv - 1))

    def mixer_params(self) -> float:
        """Token-mixer weights of the mean layer (attention and recurrent layers weighted by count)."""
        if self.recurrent is Recurrent.NONE:
            return self.attention_params()
        return (self.attention_layers * self.attention_params()
                + self.recurrent_layers * self.recurrent_params()) / self.layers

    @property
    def kv_cache_heads(self) -> int:
        """Heads the KV cache is split by over tensor-parallel ranks: the KV heads, or 1 for MLA,
        whose one latent per token every rank needs whole (DeepSeek-V2 §2.1.2)."""
        return 1 if self.mla else self.kv_heads

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def token_ffn(self) -> int:
        """FFN width one token passes through: ffn, or expert_ffn x experts_per_token for a mixture of
        experts (the activation memory and FLOPs per token scale with it)."""
        return self.expert_ffn * self.experts_per_token + self.shared_expert_ffn if self.moe else self.ffn

    def active_experts(self, tokens: float) -> float:
        """Expected distinct experts that ``tokens`` tokens route to, each choosing experts_per_token
        of the experts uniformly: E (1 - (1 - k/E)^tokens). Decode at small batch reads only these."""
        if not self.moe:
            return 0.0
        return self.experts * (1.0 - (1.0 - self.experts_per_token / self.experts) ** max(tokens, 0.0))

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def attention_params(self) -> int:
        """Weights of one layer's attention block, its latent norms included (MLA: W_DQ, q norm,
        W_UQ; W_DKV with W_KR, kv norm, W_UK with W_UV; W_O. DeepSeek-V2 §2.1.2-2.1.3)."""
        h = self.hidden
        if not self.mla:
            return h * self.q_dim * (2 if self.attention_gate else 1) + 2 * h * self.kv_dim + self.q_dim * h
        q = h * self.q_dim if not self.q_lora_rank else \
            h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.q_dim
        kv = h * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank \
            + self.kv_lora_rank * self.heads * (self.head_dim - self.rope_head_dim + self.v_head_dim)
        return q + kv + self.heads * self.v_head_dim * h

    def tp_replicated_params(self) -> int:
        """Weights of one layer that every tensor-parallel rank holds whole: MLA's down-projections
        and latent norms (vLLM and SGLang run them as replicated linears)."""
        if not self.mla:
            return 0
        q = self.hidden * self.q_lora_rank + self.q_lora_rank if self.q_lora_rank else 0
        return q + self.hidden * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank

    def layer_params(self, active: bool = False, moe: bool = True) -> int:
        """Parameters of one transformer layer (attention, FFN or experts + router, two norms);
        ``active``: only the experts one token uses (top-k), as FLOPs per token count them;
        ``moe=False``: one of a mixture of experts' dense leading layers. A hybrid model's token
        mixer is the mean layer's (ModelConfig.mixer_params), so layers x this is exact."""
        h = self.hidden
        attn = self.mixer_params()
        if self.moe and moe:
            f = self.expert_ffn
            mlp = (3 if self.activation.gated else 2) * h * (f * (self.experts_per_token if active else self.experts)
                                                             + self.shared_expert_ffn) + h * self.experts
        else:
            f = self.ffn
            mlp = (3 if self.activation.gated else 2) * h * f
        norms = 2 * h * (2 if self.norm is Norm.LAYERNORM else 1)
        bias = (self.q_dim + 2 * self.kv_dim + h + (2 if self.activation.gated else 1) * f + h) if self.bias else 0
        return attn + mlp + norms + bias

    def expert_params(self) -> int:
        """Parameters of the routed experts of one layer (0 for a dense FFN)."""
        return (3 if self.activation.gated else 2) * self.hidden * self.expert_ffn * self.experts if self.moe else 0

    def embedding_params(self) -> int:
        pos = self.max_positions * self.hidden if self.position is Position.LEARNED else 0
        return self.vocab * self.hidden + pos

    def head_params(self) -> int:
        """Output projection (0 when tied to the embedding) plus the final norm."""
        final_norm = self.hidden * (2 if self.norm is Norm.LAYERNORM else 1)
        return (0 if self.tied_embeddings else self.vocab * self.hidden) + final_norm

    def params(self, active: bool = False) -> int:
        """All parameters; ``active``: those one token uses (a mixture of experts' top-k only)."""
        layers = self.moe_layers * self.layer_params(active) \
            + (self.layers - self.moe_layers) * self.layer_params(active, moe=False)
        return self.embedding_params() + layers + self.head_params()

    def kv_elements_per_token(self) -> int:
        """K and V elements cached per token over the attention layers: 2 * layers * kv_heads *
        head_dim, or for MLA layers * (kv_lora_rank + rope_head_dim), the latent and the shared
        RoPE key (DeepSeek-V2 §2.1.2, Table 1: (d_c + d_h^R) l elements). Recurrent layers keep
        a fixed state per sequence instead (recurrent_state_elements)."""
        if self.mla:
            return self.attention_layers * (self.kv_lora_rank + self.rope_head_dim)
        return 2 * self.attention_layers * self.kv_dim


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
    # multi-head latent attention and DeepSeekMoE with dense leading layers (the multi-token
    # prediction module of V3's checkpoint is left out: 671 B main-model parameters, 37 B activated)
    ModelConfig(name="deepseek-v3", layers=61, hidden=7168, heads=128, kv_heads=128, head_dim=192, ffn=18432,
                vocab=129280, activation=Activation.SWIGLU, norm=Norm.RMSNORM, position=Position.ROPE,
                experts=256, experts_per_token=8, expert_ffn=2048, shared_expert_ffn=2048, dense_layers=3,
                kv_lora_rank=512, q_lora_rank=1536, rope_head_dim=64, v_head_dim=128,
                source=_HF + "deepseek-ai/DeepSeek-V3; DeepSeek-V3 technical report (arXiv 2412.19437) §2, §4.2"),
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


def with_overrides(model: ModelConfig, **changes) -> ModelConfig:
    return replace(model, **changes)
