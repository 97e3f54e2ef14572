"""What each pipeline device holds: its layers (by the even split or a layout: Workload.device_layers),
the parameters of its layers and pieces, the micro-batches in flight on it and their activations,
and the multi-token prediction modules' share (cost/memory.py picks the fullest device)."""
from __future__ import annotations

from ..workload.spec import Mode, PipeSchedule, Workload
from .saved_tensors import activation_bytes_per_layer


def _hidden_bytes(wl: Workload) -> float:
    """One micro-batch's h-wide activation on one TP rank (s x b x h at the activation width)."""
    par = wl.parallelism
    return wl.memory.activation_bits / 8 * wl.seq_len / par.cp * wl.micro_batch * wl.model.hidden / par.tp


def mtp_projection_params(wl: Workload) -> float:
    """The 2h x h projection of one multi-token prediction module (or of the one-layer drafter of
    speculative decoding), on one TP rank."""
    return 2 * wl.model.hidden * wl.model.hidden / wl.parallelism.tp


def mtp_activation_bytes(wl: Workload) -> float:
    """Activations the multi-token prediction modules keep for backward, one micro-batch: each
    module's layer (as the model's layers under the same recompute) and its 2h-wide projection
    input and its head's inputs."""
    return wl.mtp_modules * (activation_bytes_per_layer(wl) + 4 * _hidden_bytes(wl))


def device_layer_counts(wl: Workload) -> list[int]:
    """Transformer layers each pipeline device holds, the multi-token prediction modules' layers
    counted on theirs (Workload.piece_devices; workload/transformer.py _mtp_ops)."""
    counts = list(wl.stage_layers())
    counts[wl.piece_devices()[2]] += wl.mtp_modules
    return counts


def device_params(wl: Workload, d: int) -> tuple[float, float]:
    """(layer parameters, embedding and output-layer parameters) on pipeline device ``d``: its layers
    (the dense leading ones at their size), the MTP modules where they run (Workload.piece_devices),
    the embedding, the output layer (and a tied embedding's copy there), and a serving drafter
    with the output layer (workload/transformer.py _draft_ops)."""
    m, par = wl.model, wl.parallelism
    held = wl.device_layers()[d]
    dense = sum(1 for i in held if i < m.dense_layers) if m.moe else 0
    first, last, mtp_dev = wl.piece_devices()
    layers = (len(held) - dense) * layer_params_per_device(wl) + dense * layer_params_per_device(wl, moe=False)
    if d == mtp_dev:
        layers += wl.mtp_modules * (layer_params_per_device(wl) + mtp_projection_params(wl))
    other = m.embedding_params() / par.tp if d == first else 0.0
    if d == last:
        other += m.head_params() / par.tp + (m.vocab * m.hidden / par.tp if m.tied_embeddings and d != first else 0)
        layers += drafter_params(wl)
    return layers, other


def fullest_device(wl: Workload) -> int:
    """The pipeline device that holds the most parameters (0 without a pipeline)."""
    pp = wl.parallelism.pp
    return 0 if pp == 1 else max(range(pp), key=lambda d: sum(device_params(wl, d)))


def drafter_params(wl: Workload) -> float:
    """Parameters of a decode workload's speculative drafter on one TP rank: its draft model, or one
    more layer and its 2h x h projection (0 without speculative decoding)."""
    if wl.mode is not Mode.DECODE or not wl.decode.speculative_tokens:
        return 0.0
    draft = wl.decode.draft_model
    return draft.params() / wl.parallelism.tp if draft is not None else \
        layer_params_per_device(wl) + mtp_projection_params(wl)


def in_flight_microbatches(wl: Workload) -> float:
    """Micro-batches whose activations the first pipeline stage holds at its peak."""
    par = wl.parallelism
    p, mb = par.pp, wl.microbatches
    if p == 1:
        return 1.0
    sched = par.schedule
    if sched is PipeSchedule.GPIPE:
        return float(mb)
    if sched is PipeSchedule.INTERLEAVED and par.interleave > 1:
        return min(mb, p) * (1 + (p - 1) / (p * par.interleave))   # Korthikanti §4.2.3
    if sched is PipeSchedule.V_HALF:
        return float((p + 2) // 2)                                  # Qi et al. 2024 (seed §7b)
    if sched is PipeSchedule.V_MIN:
        return float((p + 4) // 3)
    return float(min(mb, p))                                        # 1F1B, ZB-H1


def device_flight(wl: Workload, d: int) -> float:
    """Micro-batches whose activations pipeline device ``d`` holds at its peak: p - d under 1F1B
    and ZB-H1, Megatron-LM's warm-up count (p - d - 1) x 2 + (v - 1) x p + 1 model chunks over v
    for the interleaved schedule (d = 0: Korthikanti §4.2.3's), the first device's otherwise."""
    par = wl.parallelism
    p, mb = par.pp, wl.microbatches
    if par.schedule in (PipeSchedule.ONE_F_ONE_B, PipeSchedule.ZB_H1):
        return float(max(1, min(mb, p) - d))
    if par.schedule is PipeSchedule.INTERLEAVED and par.interleave > 1:
        return min(mb, p) * (1 + (p - 2 * d - 1) / (p * par.interleave))
    return in_flight_microbatches(wl)


def piece_activation_bytes(wl: Workload, d: int) -> float:
    """Activation bytes of one micro-batch on pipeline device ``d`` beyond its layers': the output
    layer's inputs (final norm and output projection) and the MTP modules' where they run."""
    _, last, mtp_dev = wl.piece_devices()
    hidden = _hidden_bytes(wl)
    # each output layer (the model's and the MTP modules', computed with the loss) keeps its two
    # h-wide inputs; the MTP module's body its layer and its 2h-wide projection input
    total = 2 * hidden * (1 + wl.mtp_modules) if d == last else 0.0
    return total + (wl.mtp_modules * (activation_bytes_per_layer(wl) + 2 * hidden) if d == mtp_dev else 0.0)


def device_activations(wl: Workload, d: int) -> float:
    """Activation bytes pipeline device ``d`` holds at its peak in training: its layers' for the
    micro-batches in flight there, the output layer's inputs and the MTP modules' where they run."""
    m, par = wl.model, wl.parallelism
    flight = device_flight(wl, d)
    total = activation_bytes_per_layer(wl) * len(wl.device_layers()[d]) * flight
    if m.dropout and d == 0:
        total += wl.seq_len / par.cp * wl.micro_batch * m.hidden * flight / par.tp
    return total + piece_activation_bytes(wl, d)


def layer_params_per_device(wl: Workload, moe: bool = True) -> float:
    """Parameters of one layer on one device: tensor-parallel shard (MLA's down-projections whole
    on every rank), experts / ep of the experts; ``moe=False``: a dense leading layer."""
    m, par = wl.model, wl.parallelism
    # data-parallel attention holds the whole attention block on every TP rank
    rep = m.mixer_params() if par.attention_dp else m.tp_replicated_params()
    experts = m.expert_params() if moe else 0
    return (m.layer_params(moe=moe) - rep - experts * (1 - 1 / par.ep)) / par.tp + rep
