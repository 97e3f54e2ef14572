"""Transformer architectures: the frozen :class:`ModelConfig` (dense, mixture of experts, latent
attention, sliding windows, hybrid recurrent layers). The built-in registry is workload/builtins.py.
"""
from __future__ import annotations

from dataclasses import dataclass
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
    index_topk: int = 0               # DeepSeek sparse attention (DSA; DeepSeek-V3.2-Exp report §2): keys each query
                                      # attends to, chosen by a lightning indexer; 0 -> dense attention
    index_heads: int = 0              # DSA: the indexer's query heads (index_n_heads; V3.2: 64)
    index_head_dim: int = 0           # DSA: their width and that of the one indexer key cached per token (V3.2: 128)
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
    block_pattern: str = ""           # layers as blocks of one sublayer each, one character per layer
                                      # (Nemotron-H's hybrid_override_pattern): M recurrent mixer, * attention,
                                      # - dense FFN, E mixture of experts; "" -> every layer has a mixer and an FFN
    mtp_layers: int = 0               # multi-token prediction modules trained with the model (DeepSeek-V3, arXiv
                                      # 2412.19437 §2.2; HF num_nextn_predict_layers; Megatron --mtp-num-layers):
                                      # each one more layer of the last layer's kind on the last pipeline stage
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
    def sparse(self) -> bool:
        """DeepSeek sparse attention: each query attends to the index_topk keys its indexer scores highest."""
        return self.index_topk > 0

    def indexer_params(self) -> int:
        """Weights of one layer's lightning indexer (DeepSeek-V3.2's inference code, Indexer): its query
        up-projection from the query latent (W_q^I: q_lora_rank -> heads x dim; from the hidden state
        without one), the key projection W_k^I, the head weights' projection w^I (hidden -> heads) and
        the key's LayerNorm (weight and bias)."""
        if not self.sparse:
            return 0
        q_in = self.q_lora_rank or self.hidden
        d = self.index_head_dim
        return q_in * self.index_heads * d + self.hidden * (d + self.index_heads) + 2 * d

    @property
    def index_key_bytes(self) -> float:
        """Bytes one token's indexer key takes in one layer's index cache: index_head_dim FP8 values
        and an FP32 scale per 128 of them (DeepSeek-V3.2's inference code quantises the key in blocks
        of 128; vLLM's and SGLang's index caches alike)."""
        return self.index_head_dim + 4.0 * -(-self.index_head_dim // 128) if self.sparse else 0.0

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is the mixture of experts (all but the dense_layers leading ones)."""
        if self.block_pattern:
            return self.block_pattern.count("E") if self.moe else 0
        return self.layers - self.dense_layers if self.moe else 0

    def is_moe_layer(self, layer: int) -> bool:
        if self.block_pattern:
            return self.moe and self.block_pattern[layer] == "E"
        return self.moe and layer >= self.dense_layers

    def has_mixer(self, layer: int) -> bool:
        """Whether ``layer`` mixes tokens (attention or recurrence): always, unless block_pattern
        makes it an FFN-only block."""
        return not self.block_pattern or self.block_pattern[layer] in ("M", "*")

    def has_ffn(self, layer: int) -> bool:
        return not self.block_pattern or self.block_pattern[layer] in ("-", "E")

    def is_recurrent(self, layer: int) -> bool:
        """Whether ``layer`` mixes tokens by its recurrence rather than by softmax attention."""
        if self.recurrent is Recurrent.NONE:
            return False
        if self.block_pattern:
            return self.block_pattern[layer] == "M"
        return not self.attention_every or layer % self.attention_every != self.attention_offset

    def is_attention(self, layer: int) -> bool:
        """Whether ``layer`` has softmax attention (and so a KV cache)."""
        return self.has_mixer(layer) and not self.is_recurrent(layer)

    @property
    def recurrent_layers(self) -> int:
        return sum(self.is_recurrent(i) for i in range(self.layers))

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention, which keep a KV cache."""
        return sum(self.is_attention(i) for i in range(self.layers))

    @property
    def mixer_layers(self) -> int:
        return sum(self.has_mixer(i) for i in range(self.layers))

    @property
    def ffn_layers(self) -> int:
        return sum(self.has_ffn(i) for i in range(self.layers))

    def is_windowed(self, layer: int) -> bool:
        """Whether ``layer`` attends to a sliding window of keys rather than all of them."""
        if not self.sliding_window or not self.is_attention(layer):
            return False
        return not self.global_every or layer % self.global_every != self.global_every - 1

    @property
    def windowed_layers(self) -> int:
        return sum(self.is_windowed(i) for i in range(self.layers))

    def layer_kind(self, layer: int) -> tuple[bool, ...]:
        """What makes layers differ: (routes to experts, attends in a window, recurs, has a mixer,
        has an FFN)."""
        return (self.is_moe_layer(layer), self.is_windowed(layer), self.is_recurrent(layer), self.has_mixer(layer),
                self.has_ffn(layer))

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
        if self.recurrent is Recurrent.NONE and not self.block_pattern:
            return self.attention_params()
        return (self.attention_layers * self.attention_params()
                + self.recurrent_layers * (self.recurrent_params() if self.recurrent_layers else 0)) / self.layers

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
        return q + kv + self.heads * self.v_head_dim * h + self.indexer_params()

    def tp_replicated_params(self) -> int:
        """Weights of one layer that every tensor-parallel rank holds whole: MLA's down-projections
        and latent norms, and a sparse-attention indexer (vLLM and SGLang run them as replicated
        linears)."""
        if not self.mla:
            return 0
        q = self.hidden * self.q_lora_rank + self.q_lora_rank if self.q_lora_rank else 0
        return q + self.hidden * (self.kv_lora_rank + self.rope_head_dim) + self.kv_lora_rank + self.indexer_params()

    def layer_params(self, active: bool = False, moe: bool = True) -> int:
        """Parameters of one transformer layer (attention, FFN or experts + router, two norms);
        ``active``: only the experts one token uses (top-k), as FLOPs per token count them;
        ``moe=False``: one of a mixture of experts' dense leading layers. A hybrid model's token
        mixer is the mean layer's (ModelConfig.mixer_params), so layers x this is exact."""
        h = self.hidden
        if self.block_pattern:     # the mean block
            return sum(self.block_params(i, active) for i in range(self.layers)) / self.layers
        attn = self.mixer_params()
        mlp = self._ffn_params(self.moe and moe, active)
        f = self.expert_ffn if self.moe and moe else self.ffn
        norms = 2 * h * (2 if self.norm is Norm.LAYERNORM else 1)
        bias = (self.q_dim + 2 * self.kv_dim + h + (2 if self.activation.gated else 1) * f + h) if self.bias else 0
        return attn + mlp + norms + bias

    def _ffn_params(self, moe: bool, active: bool) -> int:
        h, mats = self.hidden, (3 if self.activation.gated else 2)
        if moe:
            return mats * h * (self.expert_ffn * (self.experts_per_token if active else self.experts)
                               + self.shared_expert_ffn) + h * self.experts
        return mats * h * self.ffn

    def block_params(self, layer: int, active: bool = False) -> int:
        """Parameters of one block of block_pattern: its mixer or its FFN, and its norm."""
        mixer = (self.recurrent_params() if self.is_recurrent(layer) else self.attention_params()) \
            if self.has_mixer(layer) else 0
        ffn = self._ffn_params(self.is_moe_layer(layer), active) if self.has_ffn(layer) else 0
        norms = (self.has_mixer(layer) + self.has_ffn(layer)) * self.hidden * (2 if self.norm is Norm.LAYERNORM else 1)
        return mixer + ffn + norms

    def expert_params(self) -> float:
        """Parameters of the routed experts of one layer (0 for a dense FFN); with block_pattern,
        of the mean block."""
        per = (3 if self.activation.gated else 2) * self.hidden * self.expert_ffn * self.experts if self.moe else 0
        return per * self.moe_layers / self.layers if self.block_pattern else per

    def embedding_params(self) -> int:
        pos = self.max_positions * self.hidden if self.position is Position.LEARNED else 0
        return self.vocab * self.hidden + pos

    def head_params(self) -> int:
        """Output projection (0 when tied to the embedding) plus the final norm."""
        final_norm = self.hidden * (2 if self.norm is Norm.LAYERNORM else 1)
        return (0 if self.tied_embeddings else self.vocab * self.hidden) + final_norm

    def params(self, active: bool = False) -> int:
        """All parameters; ``active``: those one token uses (a mixture of experts' top-k only)."""
        if self.block_pattern:
            layers = sum(self.block_params(i, active) for i in range(self.layers))
        else:
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
