"""A pipeline-stage boundary's send (cost/estimate.py stage_p2p_s): each tensor-parallel rank sends
its 1/tp share over its own link (Megatron's scatter/gather, Narayanan et al. 2021 §4.1)."""
from __future__ import annotations

import simhw
from simhw.cost.comm import collective_time_s, pick_link
from simhw.cost.pipeline import stage_p2p_s
from simhw.workload.from_yaml import workload_from_dict
from simhw.workload.graph import Collective, LinkScope


def _wl(tp, sp):
    return workload_from_dict({"model": "gpt3-175b", "mode": "train", "dtype": "bf16", "seq_len": 2048,
                               "micro_batch": 1, "global_batch": 64, "devices": 64,
                               "parallelism": {"tp": tp, "pp": 8, "sp": sp}}, "t")


def test_each_tensor_parallel_rank_sends_its_share_across_nodes():
    node = simhw.load_hw("dgx-a100")
    full = 2048 * 12288 * 2
    link = pick_link(node, LinkScope.INTER, 9)
    share = collective_time_s(Collective.SEND_RECV, full / 8, 2, link, node.device)
    assert stage_p2p_s(_wl(8, True), node, node.device) == share
    # without sequence parallelism the shares are all-gathered inside the receiving node
    assert stage_p2p_s(_wl(8, False), node, node.device) > share
    assert stage_p2p_s(_wl(8, False), node, node.device) < collective_time_s(Collective.SEND_RECV, full, 2, link,
                                                                              node.device)
