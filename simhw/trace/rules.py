"""The table from profiler op names to cost rules (ops.py), by family.

Argument positions follow the ATen schemas in ``aten/src/ATen/native/native_functions.yaml``
(torch 2.x). Ops are matched by their full profiler name (``aten::mm``); names without a
namespace (``nccl:all_reduce``, ``record_param_comms``) are listed as written by the profiler.
"""
from __future__ import annotations

from ..cost.rowwise import RowOp
from ..workload.graph import Collective, OpKind
from ..workload.functions import function_flops
from .inductor import inductor_rule, is_inductor_kernel
from .memops import (collective, concat, copy, embedding_backward, foreach, gather_rows, nll_loss, norm_backward,
                     pointwise, reduction, row_norm, row_norm_backward, scan, softmax, to_copy, write_only)
from .ops import COMPOSITE, NO_WORK, SELF_FIRST, TERMINAL, Rule, attention, bmm, conv, conv_backward, linear, matmul, mm, mv

E, N, S, L = OpKind.ELEMENTWISE, OpKind.NORM, OpKind.SOFTMAX, OpKind.LOSS

_NO_WORK = """view _unsafe_view as_strided t transpose permute expand expand_as slice select narrow split
split_with_sizes chunk unbind squeeze unsqueeze detach detach_ alias empty empty_like empty_strided resize_
resolve_conj resolve_neg result_type size stride numel lift_fresh lift _reshape_alias view_as movedim
swapaxes swapdims unflatten diagonal real imag conj is_nonzero dim _has_compatible_shallow_copy_type
requires_grad_ record_stream set_ as_strided_ unfold _nested_tensor_from_mask_left_aligned is_same_size
_version retain_grad _fw_primal _make_dual _unpack_dual sym_size sym_stride sym_numel _shape_as_tensor
broadcast_tensors meshgrid new_empty new_empty_strided empty_permuted""".split()
_PASS = """to contiguous reshape flatten type_as einsum item tensordot stack hstack vstack dstack
zeros_like ones_like full_like rand_like randn_like new_zeros new_ones new_full zeros ones full rand randn
randint scalar_tensor select_backward slice_backward constant_pad_nd pad _pad_enum dropout feature_dropout
alpha_dropout _batch_norm_impl_index nll_loss nll_loss_nd cross_entropy_loss embedding_backward
index_put _index_put_impl_ repeat_interleave tile __and__ __or__ linalg_norm _grad_sum_to_size
max_pool1d max_pool3d instance_norm conv_transpose1d conv_transpose2d conv_transpose3d""".split()

_UNARY = """abs abs_ neg neg_ exp exp_ exp2 expm1 log log_ log2 log10 log1p sqrt sqrt_ rsqrt rsqrt_ sin cos
tan sinh cosh asin acos atan erf erfc erfinv sign sgn reciprocal reciprocal_ square floor ceil round trunc
frac relu relu_ sigmoid sigmoid_ tanh tanh_ hardtanh hardtanh_ leaky_relu leaky_relu_ clamp clamp_ clamp_min
clamp_min_ clamp_max clamp_max_ nan_to_num nan_to_num_ logit isnan isinf isfinite logical_not bitwise_not
tril triu tril_ triu_ relu6 hardsigmoid hardswish hardswish_ elu elu_ selu celu threshold threshold_
softplus mish silu_ gelu_ clip clip_ flip roll repeat masked_fill masked_fill_ index_fill_""".split()
_BINARY = """add add_ sub sub_ rsub mul mul_ div div_ true_divide floor_divide remainder fmod pow pow_
maximum minimum max_other min_other eq ne lt le gt ge eq_ ne_ logical_and logical_and_ logical_or
logical_or_ logical_xor bitwise_and bitwise_or bitwise_xor where lerp lerp_ addcmul addcmul_ addcdiv
addcdiv_ atan2 hypot copysign xlogy _s_where masked_scatter masked_scatter_ sigmoid_backward
tanh_backward threshold_backward silu_backward hardswish_backward hardtanh_backward
leaky_relu_backward elu_backward softplus_backward logit_backward mish_backward
native_dropout_backward bernoulli_ bernoulli""".split()
_REDUCE = """sum mean amax amin max min prod all any argmax argmin norm linalg_vector_norm var std var_mean
std_mean logsumexp count_nonzero nansum nanmean _aminmax aminmax""".split()


def _table() -> dict:
    t: dict = {}

    def add(names, mode, fn, raw=False):
        for n in names if isinstance(names, (list, tuple)) else names.split():
            t[n if raw or ":" in n else f"aten::{n}"] = Rule(mode, fn)

    for n in _NO_WORK:
        t[f"aten::{n}"] = NO_WORK
    for n in ("detach", "detach_"):
        t[n] = NO_WORK
    add(_PASS, COMPOSITE, None)
    # GEMMs
    add("mm _int_mm", TERMINAL, mm)
    add("addmm _addmm_activation", TERMINAL, lambda a: mm(a, 1, 2, bias=0))
    add("_scaled_mm", TERMINAL, mm)
    add("bmm", TERMINAL, bmm)
    add("baddbmm", TERMINAL, lambda a: bmm(a, 1, 2, bias=0))
    add("addbmm", TERMINAL, lambda a: bmm(a, 1, 2))
    add("matmul", TERMINAL, matmul)
    add("linear", TERMINAL, linear)
    add("mv dot vdot", TERMINAL, mv)
    add("addmv", TERMINAL, lambda a: mv(a, 1, 2))
    # attention: SDPA chooses a backend op; its fused kernels are costed, the math path by its parts
    add("scaled_dot_product_attention", COMPOSITE, attention(0, "bhsd", 5))
    add("_scaled_dot_product_attention_math", COMPOSITE, attention(0, "bhsd", 5, flash=False))
    add("_scaled_dot_product_flash_attention", TERMINAL, attention(0, "bhsd", 4))
    add("_scaled_dot_product_flash_attention_for_cpu", TERMINAL, attention(0, "bhsd", 4))
    # is_causal: 6 since torch 2.1; torch 2.0's signature was (q, k, v, compute_log_sumexp, is_causal)
    add("_scaled_dot_product_efficient_attention", TERMINAL, attention(0, "bhsd", (6, 4)))
    add("_scaled_dot_product_cudnn_attention", TERMINAL, attention(0, "bhsd", 6))
    add("_scaled_dot_product_fused_attention_overrideable", TERMINAL, attention(0, "bhsd", 5))
    add("_flash_attention_forward", TERMINAL, attention(0, "bshd", 8))
    add("_efficient_attention_forward", TERMINAL, attention(0, "bshd", 9, mask_type=True))
    add("_scaled_dot_product_flash_attention_backward", TERMINAL, attention(1, "bhsd", 11, backward=True))
    add("_scaled_dot_product_flash_attention_for_cpu_backward", TERMINAL, attention(1, "bhsd", 7, backward=True))
    add("_scaled_dot_product_efficient_attention_backward", TERMINAL, attention(1, "bhsd", (11, 6), backward=True))
    add("_scaled_dot_product_cudnn_attention_backward", TERMINAL, attention(1, "bhsd", 14, backward=True))
    add("_flash_attention_backward", TERMINAL, attention(1, "bshd", 11, backward=True))
    add("_efficient_attention_backward", TERMINAL, attention(1, "bshd", 14, backward=True, mask_type=True))
    # convolution: the public ops descend to the backend that ran
    add("conv1d conv2d conv3d", COMPOSITE, conv())
    add("convolution _convolution", COMPOSITE, conv(transposed_at=6, groups_at=8))
    add("mkldnn_convolution miopen_convolution", TERMINAL, conv(stride_at=4, pad_at=3))
    add("cudnn_convolution", TERMINAL, conv(stride_at=3, pad_at=2, dil_at=4, groups_at=5))
    add("cudnn_convolution_transpose", TERMINAL, conv(stride_at=4, pad_at=2, dil_at=5, groups_at=6))
    add("_slow_conv2d_forward thnn_conv2d slow_conv3d", TERMINAL, conv(stride_at=4, pad_at=5, dil_at=None,
                                                                       groups_at=None))
    add("_conv_depthwise2d", TERMINAL, conv(stride_at=4, pad_at=5, dil_at=6, groups_at=None))
    add("convolution_overrideable", TERMINAL, conv(transposed_at=6, groups_at=8))
    add("convolution_backward", TERMINAL, conv_backward)
    # norms, softmax, losses
    add("layer_norm group_norm batch_norm rms_norm", COMPOSITE, pointwise(N, 5.0))
    add("native_group_norm native_batch_norm _native_batch_norm_legit "
        "_native_batch_norm_legit_no_training _batch_norm_with_update cudnn_batch_norm miopen_batch_norm",
        TERMINAL, pointwise(N, 5.0))
    add("native_layer_norm", TERMINAL, row_norm(RowOp.LAYER_NORM))
    add("_fused_rms_norm", TERMINAL, row_norm(RowOp.RMS_NORM))
    add("native_batch_norm_backward cudnn_batch_norm_backward native_group_norm_backward miopen_batch_norm_backward",
        TERMINAL, norm_backward)
    add("native_layer_norm_backward", TERMINAL, row_norm_backward(RowOp.LAYER_NORM_BACKWARD))
    add("_fused_rms_norm_backward", TERMINAL, row_norm_backward(RowOp.RMS_NORM_BACKWARD))
    add("softmax log_softmax", COMPOSITE, pointwise(S, 5.0))
    add("_log_softmax", TERMINAL, softmax(5.0))
    add("_softmax _safe_softmax", TERMINAL, softmax(5.0, log=False))
    add("_log_softmax_backward_data", TERMINAL, softmax(4.0, backward=True))
    add("_softmax_backward_data", TERMINAL, softmax(4.0, backward=True, log=False))
    add("nll_loss_forward nll_loss2d_forward", TERMINAL, nll_loss(backward=False))
    add("nll_loss_backward nll_loss2d_backward", TERMINAL, nll_loss(backward=True))
    add("mse_loss l1_loss smooth_l1_loss huber_loss binary_cross_entropy binary_cross_entropy_with_logits kl_div "
        "mse_loss_backward l1_loss_backward smooth_l1_loss_backward huber_loss_backward "
        "binary_cross_entropy_backward binary_cross_entropy_with_logits_backward", TERMINAL, pointwise(L, 3.0))
    # activations and elementwise
    # FLOPs per element: workload/functions.py (GELU's erf makes it SM-bound; traces do not record
    # approximate='tanh', so the erf form is assumed)
    for fn in ("gelu", "gelu_backward", "silu"):
        add(fn, TERMINAL, pointwise(E, function_flops(fn)))
    add(_UNARY, TERMINAL, pointwise(E, 1.0))
    add(_BINARY, TERMINAL, pointwise(E, 1.0))
    add("native_dropout", TERMINAL, pointwise(E, 2.0))
    add(_REDUCE, TERMINAL, reduction())
    add("cumsum cumsum_ cumprod cummax cummin sort argsort topk", TERMINAL, scan)
    add("fill_ zero_ uniform_ normal_ random_ exponential_ arange linspace randperm", TERMINAL, write_only())
    add("max_pool2d avg_pool2d adaptive_avg_pool2d adaptive_max_pool2d", COMPOSITE, pointwise(E, 1.0))
    add("max_pool2d_with_indices avg_pool2d avg_pool3d _adaptive_avg_pool2d adaptive_max_pool2d "
        "max_pool3d_with_indices mkldnn_max_pool2d _adaptive_avg_pool3d", TERMINAL, pointwise(E, 1.0))
    add("max_pool2d_with_indices_backward avg_pool2d_backward _adaptive_avg_pool2d_backward "
        "adaptive_max_pool2d_backward", TERMINAL, pointwise(E, 1.0))
    # copies and data movement
    add("copy_ clone _copy_from _copy_from_and_resize narrow_copy expand_copy permute_copy transpose_copy "
        "_reshape_copy view_copy", TERMINAL, copy)
    add("_to_copy", COMPOSITE, to_copy)
    add("cat _cat concat concatenate", TERMINAL, concat)
    add("index_select", TERMINAL, gather_rows(E, idx_at=2))
    add("gather scatter scatter_ scatter_add scatter_add_ index index_add_ index_copy_ index_put_ "
        "_unsafe_index masked_select take gather_backward value_selecting_reduction_backward",
        TERMINAL, pointwise(OpKind.COPY, 0.0))
    add("_local_scalar_dense", COMPOSITE, None)          # .item(): costed only by its DtoH memcpy, if any
    add("embedding", TERMINAL, gather_rows(OpKind.EMBEDDING))
    add("embedding_bag _embedding_bag", TERMINAL, gather_rows(OpKind.EMBEDDING, idx_at=1))
    add("embedding_dense_backward", TERMINAL, embedding_backward)
    # optimizers: foreach (one launch per list chunk) and fused
    for n in ("add add_ sub sub_ mul mul_ div div_ addcmul addcmul_ addcdiv addcdiv_ lerp lerp_ sqrt sqrt_ "
              "neg neg_ exp exp_ maximum maximum_ minimum minimum_ clamp_min_ clamp_max_ sign sign_ "
              "reciprocal reciprocal_ abs abs_ zero_ copy_ pow pow_ sigmoid_ tanh_ rsqrt rsqrt_").split():
        add(f"_foreach_{n}", TERMINAL, foreach(1.0, writes=1))
    add("_foreach_norm", TERMINAL, foreach(2.0, writes=0))
    add("_fused_adam_ _fused_adamw_ _fused_adam _fused_adamw", TERMINAL, foreach(15.0, writes=3))
    add("_fused_sgd_ _fused_sgd _fused_adagrad_", TERMINAL, foreach(4.0, writes=2))
    # collectives: NCCL annotations carry the tensor; record_param_comms the message sizes (torch >= 2.1)
    for prefix in ("nccl:", "gloo:"):
        add([prefix + n for n in ("all_reduce", "allreduce_coalesced", "reduce", "all_reduce_coalesced")],
            TERMINAL, collective(Collective.ALL_REDUCE))
        add([prefix + n for n in ("all_gather", "_all_gather_base", "all_gather_into_tensor_coalesced",
                                  "broadcast", "all_gather_coalesced")], TERMINAL,
            collective(Collective.ALL_GATHER, gather=True))
        add([prefix + n for n in ("reduce_scatter", "_reduce_scatter_base", "reduce_scatter_tensor_coalesced")],
            TERMINAL, collective(Collective.REDUCE_SCATTER))
        add([prefix + n for n in ("all_to_all", "all_to_allv", "alltoall", "alltoall_base")], TERMINAL,
            collective(Collective.ALL_TO_ALL))
        add([prefix + n for n in ("send", "recv", "recv_any_source")], TERMINAL, collective(Collective.SEND_RECV))
    add(["c10d::allreduce_", "c10d::allreduce_coalesced_", "c10d::reduce_"], SELF_FIRST,
        collective(Collective.ALL_REDUCE))
    add(["c10d::allgather_", "c10d::_allgather_base_", "c10d::allgather_into_tensor_coalesced_",
         "c10d::allgather_coalesced_", "c10d::broadcast_"], SELF_FIRST, collective(Collective.ALL_GATHER, gather=True))
    add(["c10d::reduce_scatter_", "c10d::_reduce_scatter_base_", "c10d::reduce_scatter_tensor_coalesced_"],
        SELF_FIRST, collective(Collective.REDUCE_SCATTER))
    add(["c10d::alltoall_", "c10d::alltoall_base_"], SELF_FIRST, collective(Collective.ALL_TO_ALL))
    add(["c10d::send", "c10d::recv_", "c10d::recv_any_source_"], SELF_FIRST, collective(Collective.SEND_RECV))
    add(["record_param_comms"], SELF_FIRST, _param_comms, raw=True)
    return t


_COMM_KIND = {"allreduce": Collective.ALL_REDUCE, "all_reduce": Collective.ALL_REDUCE,
              "allgather": Collective.ALL_GATHER, "all_gather": Collective.ALL_GATHER,
              "_allgather_base": Collective.ALL_GATHER, "allgather_into_tensor_coalesced": Collective.ALL_GATHER,
              "broadcast": Collective.ALL_GATHER, "reduce_scatter": Collective.REDUCE_SCATTER,
              "_reduce_scatter_base": Collective.REDUCE_SCATTER, "reduce_scatter_tensor_coalesced":
              Collective.REDUCE_SCATTER, "all_to_all": Collective.ALL_TO_ALL, "alltoall": Collective.ALL_TO_ALL,
              "alltoall_base": Collective.ALL_TO_ALL, "all_to_allv": Collective.ALL_TO_ALL,
              "send": Collective.SEND_RECV, "recv": Collective.SEND_RECV, "reduce": Collective.ALL_REDUCE}


def _param_comms(a):
    """record_param_comms with "Collective name" (torch >= 2.1); without it, look at the children."""
    ex = a.extra or {}
    kind = _COMM_KIND.get(str(ex.get("Collective name", "")).lower())
    if kind is None or "In msg nelems" not in ex:
        return None
    return collective(kind)(a)


_TABLE = _table()


def lookup(name: str):
    """Rule, NO_WORK or None for an op name (exact match on the profiler's spelling; torch.compile's
    generated kernels by their prefix, inductor.py)."""
    rule = _TABLE.get(name)
    if rule is None and is_inductor_kernel(name):
        rule = _TABLE[name] = Rule(TERMINAL, inductor_rule(name))
    return rule
