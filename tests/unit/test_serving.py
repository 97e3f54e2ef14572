"""Request-level serving simulation (simhw/sim/serving.py, `simhw serve`): its limits agree with
the cost model's iteration times, queueing behaves, KV admission caps the batch, disaggregation
removes prefill stalls from decoding, and bad input is a clear error."""
from dataclasses import replace

import pytest

from simhw import estimate
from simhw.errors import DataError, WorkloadError
from simhw.sim.requests import Request, poisson_requests, read_request_trace
from simhw.sim.serving import ServingOptions, simulate_serving
from simhw.spec.load import load_hw
from simhw.workload.from_yaml import load_workload
from simhw.workload.spec import DecodeOptions, Mode

HW = load_hw("dgx-a100")
WL = load_workload("workloads/llama2-70b-decode.yaml")     # TP 4 on 4 devices: one replica


def _one_request_times(prompt, output):
    pre = replace(WL, mode=Mode.PREFILL, micro_batch=1, global_batch=1, seq_len=prompt, decode=DecodeOptions())
    return estimate(pre, HW).step_time_s


def test_a_lone_request_takes_the_estimates_prefill_and_decode_times():
    """At a rate far below capacity every request is served alone: its time to first token is the
    estimate's prefill of its prompt, each later token one decode iteration at batch 1."""
    res = simulate_serving(WL, HW, poisson_requests(20, 0.01, 1024, 64, seed=3))
    assert res.mean_decode_batch == pytest.approx(1.0)
    ttft = _one_request_times(1024, 64)
    for r in res.requests:
        assert r.ttft_s == pytest.approx(ttft, rel=1e-9)
    mid = replace(WL, micro_batch=1, global_batch=1, decode=replace(WL.decode, context_len=1024 + 32, new_tokens=1))
    assert res.requests[0].tpot_s == pytest.approx(estimate(mid, HW).step_time_s, rel=0.02)


def test_queueing_grows_with_load_and_throughput_saturates():
    low, mid, high = (simulate_serving(WL, HW, poisson_requests(200, rate, 1024, 128, seed=1)).summary()
                      for rate in (0.1, 2.0, 20.0))
    assert low["ttft_p90_s"] < mid["ttft_p90_s"] < high["ttft_p90_s"]
    assert low["output_tokens_per_s"] < mid["output_tokens_per_s"] < high["output_tokens_per_s"]
    # an offline batch of the same 200 requests gives the same saturated throughput within 10%
    batch = simulate_serving(WL, HW, poisson_requests(200, 0.0, 1024, 128)).summary()
    assert batch["output_tokens_per_s"] == pytest.approx(high["output_tokens_per_s"], rel=0.1)


def test_kv_admission_caps_the_batch():
    """With 45% of memory for weights and KV, what is left holds under 80 requests of 1152 tokens:
    reserving each request's whole cache, no more than that run at once."""
    res = simulate_serving(WL, HW, poisson_requests(120, 0.0, 1024, 128),
                           ServingOptions(kv_memory_fraction=0.45, kv_on_demand=False))
    per_request = 1024 + 128
    assert res.kv_capacity_tokens // per_request < 80
    assert res.mean_decode_batch <= res.kv_capacity_tokens // per_request + 1e-9
    full = simulate_serving(WL, HW, poisson_requests(120, 0.0, 1024, 128))
    assert full.mean_decode_batch > res.mean_decode_batch


def test_disaggregation_keeps_prefills_out_of_decode_iterations():
    """Splitwise's point: on shared replicas each new prompt stalls every running sequence for a
    prefill; with one prefill and one decode replica, decoding runs undisturbed (the KV cache moves
    over the network)."""
    wl = replace(WL, devices=8)
    reqs = poisson_requests(200, 3.0, 1024, 128, seed=2)
    shared = simulate_serving(wl, HW, reqs).summary()
    split = simulate_serving(wl, HW, reqs, ServingOptions(prefill_replicas=1)).summary()
    assert split["tpot_p90_s"] < 0.75 * shared["tpot_p90_s"]
    # ... and the lone prefill replica queues the prompts the two shared ones split
    assert split["ttft_p90_s"] > shared["ttft_p90_s"]
    assert split["requests"] == shared["requests"] == 200


def test_speculative_decoding_shortens_time_per_token():
    spec = replace(WL, decode=replace(WL.decode, speculative_tokens=3, acceptance=0.8))
    reqs = poisson_requests(20, 0.01, 512, 64)
    plain, fast = simulate_serving(WL, HW, reqs).summary(), simulate_serving(spec, HW, reqs).summary()
    assert fast["tpot_p50_s"] < 0.7 * plain["tpot_p50_s"]


def test_request_traces_and_their_errors(tmp_path):
    good = tmp_path / "t.csv"
    good.write_text("arrival_s,prompt_tokens,output_tokens\n1.5,100,10\n0.5,200,20\n")
    assert read_request_trace(good) == (Request(0.5, 200, 20), Request(1.5, 100, 10))
    for text, needle in (("prompt_tokens\n5\n", "missing column"), ("prompt_tokens,output_tokens\n5,x\n", ":2:"),
                         ("prompt_tokens,output_tokens\n0,5\n", "at least 1"), ("prompt_tokens,output_tokens\n", "no requests")):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(DataError, match=needle):
            read_request_trace(bad)


@pytest.mark.parametrize("change, options, needle", [
    ({"mode": Mode.TRAIN}, ServingOptions(), "serve simulates inference"),
    ({}, ServingOptions(prefill_replicas=1), "leave no decode replica"),
    ({}, ServingOptions(kv_memory_fraction=0.4), "needs"),
    ({"parallelism": replace(WL.parallelism, cp=2), "devices": 8}, ServingOptions(), "context parallelism"),
])
def test_serving_errors(change, options, needle):
    with pytest.raises(WorkloadError, match=needle):
        simulate_serving(replace(WL, **change), HW, poisson_requests(5, 1.0, 1024, 64), options)


def test_serve_cli(tmp_path, capsys):
    from simhw.cli import main
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--rate", "0.5", "--requests", "30",
                 "--format", "json", "-o", str(tmp_path / "s.json")]) == 0
    import json
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["schema"] == "simhw.serve/1" and out["requests"] == 30 and out["ttft_p50_s"] > 0
    trace = tmp_path / "bad.csv"
    trace.write_text("prompt_tokens\n5\n")
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--trace", str(trace)]) == 2
    assert "missing column" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--rate", "-1"])
    assert exc.value.code == 2


def test_energy_counts_iterations_idle_draw_and_hosts():
    """Energy per output token: at a low rate the replica idles most of the time and its idle draw
    dominates; a node spec adds its hosts' draw once for the run, as estimate charges it."""
    a100 = load_hw("a100")
    low = simulate_serving(WL, a100, poisson_requests(20, 0.01, 512, 64, seed=4))
    busy = simulate_serving(WL, a100, poisson_requests(20, 0.0, 512, 64))
    assert low.summary()["energy_per_output_token_j"] > 3 * busy.summary()["energy_per_output_token_j"]
    idle = a100.idle_w * 4 * (low.makespan_s * (1 - low.busy_share))
    assert low.energy_j > idle > 0.5 * low.energy_j
    node = simulate_serving(WL, HW, poisson_requests(20, 0.0, 512, 64))
    assert node.energy_j == pytest.approx(busy.energy_j + HW.host_power_w * node.makespan_s, rel=0.02)


def test_chunked_prefill_iterations():
    """Sarathi-Serve's mixed iterations: a prompt chunk riding on a decode step costs less than the
    prefill and the decode step apart (the weights are read once), a lone fresh prompt is exactly the
    estimate's prefill, a chunk after cached tokens costs more than the same chunk fresh, and adding
    a chunk never makes a decode step cheaper."""
    from simhw.sim.serving_costs import IterationCosts
    c = IterationCosts(WL, HW)
    assert c.mixed(0, 0, [(4096, 0)]) == c.cost(Mode.PREFILL, 1, 4096)
    together = c.mixed(32, 2048, [(2048, 0)])[0]
    apart = c.cost(Mode.DECODE, 32, 2048)[0] + c.cost(Mode.PREFILL, 1, 2048)[0]
    assert together < apart
    assert c.mixed(0, 0, [(2048, 2048)])[0] > c.mixed(0, 0, [(2048, 0)])[0]
    assert c.mixed(32, 2048, [(16, 0)])[0] > c.cost(Mode.DECODE, 32, 2048)[0]


def test_chunked_prefill_spreads_prompts_over_iterations():
    """A 20k-token prompt with an 8192-token budget takes three iterations; the small token budget
    keeps decoding sequences from stalling behind whole prompts (lower TPOT p90 under load)."""
    long_ = simulate_serving(WL, HW, (Request(0.0, 20000, 4),), ServingOptions(chunked_prefill=True))
    whole = simulate_serving(WL, HW, (Request(0.0, 20000, 4),))
    assert long_.requests[0].ttft_s == pytest.approx(whole.requests[0].ttft_s, rel=0.1)
    reqs = poisson_requests(200, 2.0, 2048, 128, seed=1)
    plain = simulate_serving(WL, HW, reqs).summary()
    chunked = simulate_serving(WL, HW, reqs, ServingOptions(chunked_prefill=True, max_batch_tokens=512)).summary()
    assert chunked["tpot_p90_s"] < 0.9 * plain["tpot_p90_s"]
    assert chunked["requests"] == 200


def test_on_demand_kv_preempts_the_newest_sequence_and_recomputes_it():
    """vLLM's block manager: admission needs only the prompt, so more sequences start than the
    cache can finish; when a decode step's tokens do not fit, the newest is evicted and later
    prefilled again with what it had emitted. Every request still completes with its full output;
    with room to spare nothing is preempted, and reserving whole caches never preempts."""
    reqs = poisson_requests(60, 0.0, 1024, 512)
    tight = simulate_serving(WL, HW, reqs, ServingOptions(kv_memory_fraction=0.45))
    reserved = simulate_serving(WL, HW, reqs, ServingOptions(kv_memory_fraction=0.45, kv_on_demand=False))
    roomy = simulate_serving(WL, HW, reqs)
    assert tight.preemptions > 0 and reserved.preemptions == roomy.preemptions == 0
    assert len(tight.requests) == 60 and all(r.done_s > r.first_token_s >= r.arrival_s for r in tight.requests)
    # admitting on the prompt alone runs larger decode batches than reserving whole caches
    assert tight.mean_decode_batch > reserved.mean_decode_batch
    assert tight.summary()["output_tokens_per_s"] < roomy.summary()["output_tokens_per_s"]


def test_goodput_search():
    """DistServe's goodput: loose SLOs let the rate approach the offline batch's; a TPOT target
    below one decode step at batch 1 admits no rate at all; the rate found meets the attainment."""
    from simhw.sim.goodput import attainment, max_goodput
    loose = max_goodput(WL, HW, 1024, 64, 60.0, 1.0, requests=80)
    assert 0.8 * loose.saturation_rate_per_s <= loose.rate_per_s <= 1.5 * loose.saturation_rate_per_s
    tight = max_goodput(WL, HW, 1024, 64, 2.0, 0.1, requests=80)
    assert 0 < tight.rate_per_s < loose.rate_per_s
    assert attainment(tight.result, 2.0, 0.1) >= 0.9 and tight.attainment >= 0.9
    never = max_goodput(WL, HW, 1024, 64, 2.0, 0.001, requests=40, steps=4)
    assert never.rate_per_s == 0.0 and never.result is None


def test_goodput_cli(tmp_path, capsys):
    from simhw.cli import main
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--slo-ttft", "2 s", "--slo-tpot",
                 "100 ms", "--requests", "60", "--format", "json", "-o", str(tmp_path / "g.json")]) == 0
    import json
    out = json.loads((tmp_path / "g.json").read_text())
    assert out["schema"] == "simhw.goodput/1" and out["goodput_requests_per_s"] > 0
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--slo-ttft", "2 s"]) == 2
    assert "both --slo-ttft and --slo-tpot" in capsys.readouterr().err
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--slo-ttft", "2 parsecs",
                 "--slo-tpot", "1 ms"]) == 2


def test_serve_compares_hardware(tmp_path, capsys):
    from simhw.cli import main
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--hw", "dgx-h100", "--rate", "1",
                 "--requests", "30"]) == 0
    out = capsys.readouterr().out
    assert "dgx-a100" in out and "dgx-h100" in out and "time per output token p90" in out
    assert main(["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--hw", "dgx-h100", "--rate", "1",
                 "--requests", "30", "--format", "json", "-o", str(tmp_path / "s.json")]) == 0
    import json
    body = json.loads((tmp_path / "s.json").read_text())
    a100, h100 = body["results"]
    assert a100["hardware"] == "dgx-a100" and h100["tpot_p50_s"] < a100["tpot_p50_s"]


def test_a_shared_prefix_is_prefilled_once():
    """With a 1536-token system prompt cached on the replica, a lone 2048-token request prefills only
    its last 512 tokens, attending over the whole prompt: faster than the full prefill, slower than
    a fresh 512-token prompt; the prefix's cache is held once, not per request."""
    reqs = poisson_requests(10, 0.01, 2048, 16)
    full = simulate_serving(WL, HW, reqs)
    cached = simulate_serving(WL, HW, reqs, ServingOptions(prefix_tokens=1536))
    short = simulate_serving(WL, HW, poisson_requests(10, 0.01, 512, 16))
    f, c, s = (r.requests[0].ttft_s for r in (full, cached, short))
    assert s < c < f
    assert cached.kv_capacity_tokens < full.kv_capacity_tokens      # the prefix's one copy
    with pytest.raises(WorkloadError, match="shared prefix"):
        simulate_serving(WL, HW, reqs, ServingOptions(prefix_tokens=4096))


def test_a_pipelined_replica_keeps_pp_batches_in_flight():
    """vLLM's pipeline parallelism: pp virtual engines, each with its own sequences, keep pp batches
    in flight. An offline, decode-heavy batch on tp 4 x pp 2 runs two batches of max_num_seqs / 2;
    each sequence's token takes one pass through both stages (the estimate's decode iteration at
    that batch), and the replica delivers two batches per pass. The devices' static draw is counted
    once while iterations overlap."""
    h100 = load_hw("dgx-h100")
    wl = replace(WL, devices=8, parallelism=replace(WL.parallelism, tp=4, pp=2))
    res = simulate_serving(wl, h100, poisson_requests(256, 0.0, 256, 512), ServingOptions(max_num_seqs=128))
    assert res.mean_decode_batch == pytest.approx(64, rel=0.02)
    s = res.summary()
    step = replace(wl, micro_batch=64, global_batch=64, decode=replace(wl.decode, context_len=256 + 256, new_tokens=1))
    one_pass = estimate(step, h100).step_time_s
    assert s["tpot_p50_s"] == pytest.approx(one_pass, rel=0.05)
    assert s["output_tokens_per_s"] == pytest.approx(2 * 64 / s["tpot_p50_s"], rel=0.1)
    flat = simulate_serving(replace(wl, parallelism=replace(wl.parallelism, tp=8, pp=1)), h100,
                            poisson_requests(256, 0.0, 256, 512), ServingOptions(max_num_seqs=128))
    assert flat.mean_decode_batch == pytest.approx(128, rel=0.02)
    from simhw.cost.estimate import hosts_power_w
    assert s["average_power_w"] < 8 * h100.device.tdp_w + hosts_power_w(h100, 8)


def test_a_conversations_cached_turns_are_not_prefilled_again(tmp_path):
    """A later turn of a conversation whose earlier 1536 tokens are still cached prefills only its
    last 512 tokens over the whole context: the same TTFT as the shared-prefix case, but its turns
    are its own KV (no capacity is held once for all). The trace column cached_tokens says so."""
    from simhw.sim.serving_costs import IterationCosts
    reqs = poisson_requests(10, 0.01, 2048, 16, cached_tokens=1536)
    turn = simulate_serving(WL, HW, reqs)
    shared = simulate_serving(WL, HW, poisson_requests(10, 0.01, 2048, 16), ServingOptions(prefix_tokens=1536))
    assert turn.requests[0].ttft_s == pytest.approx(shared.requests[0].ttft_s, rel=1e-9)
    assert turn.requests[0].ttft_s == pytest.approx(IterationCosts(WL, HW).mixed(0, 0.0, [(512, 1536)])[0], rel=1e-9)
    assert turn.kv_capacity_tokens > shared.kv_capacity_tokens
    csv = tmp_path / "t.csv"
    csv.write_text("arrival_s,prompt_tokens,output_tokens,cached_tokens\n0,2048,16,1536\n1,2048,16,\n")
    got = read_request_trace(csv)
    assert [r.cached_tokens for r in got] == [1536, 0]
    csv.write_text("prompt_tokens,output_tokens,cached_tokens\n2048,16,2048\n")
    with pytest.raises(DataError, match=r"t.csv:2: cached_tokens"):
        read_request_trace(csv)
    with pytest.raises(WorkloadError, match="cached tokens"):
        poisson_requests(3, 1.0, 100, 8, cached_tokens=100)


def test_an_expert_parallel_replica_serves_on_all_its_ranks():
    """Wide-EP serving (ep = 64 ranks of DeepSeek-V3, DP attention across them): one replica of 64
    devices whose ranks each hold their own sequences and KV cache and step together through the
    experts. Its KV capacity is the ranks' together; in the same rack's NVLink domain (GB200 NVL72)
    its all-to-alls are far faster than across eight DGX B200 nodes, so it serves more at a lower TPOT."""
    wl = load_workload("workloads/deepseek-v3-decode.yaml",
                       ["devices=64", "parallelism.tp=1", "parallelism.dp=64", "parallelism.ep=64"])
    reqs = poisson_requests(600, 0.0, 1024, 128)
    res = {hw: simulate_serving(wl, load_hw(hw), reqs) for hw in ("gb200-nvl72", "dgx-b200")}
    assert all(r.replicas == 1 and r.devices_per_replica == 64 for r in res.values())
    half = simulate_serving(replace(wl, devices=32, parallelism=replace(wl.parallelism, dp=32, ep=32)),
                            load_hw("gb200-nvl72"), reqs[:1])
    assert half.devices_per_replica == 32
    assert res["gb200-nvl72"].kv_capacity_tokens > 2 * half.kv_capacity_tokens    # twice the ranks, fewer experts each
    fast, slow = res["gb200-nvl72"].summary(), res["dgx-b200"].summary()
    assert fast["output_tokens_per_s"] > 1.2 * slow["output_tokens_per_s"]
    assert fast["tpot_p50_s"] < slow["tpot_p50_s"]


def test_request_lengths_drawn_as_vllms_random_dataset():
    """--range-ratio r draws each prompt and output length uniformly from L (1 - r) to L (1 + r)
    (vLLM's benchmark_serving --random-range-ratio); 0 keeps them fixed."""
    reqs = poisson_requests(2000, 5.0, 1000, 200, seed=4, range_ratio=0.5)
    prompts = [r.prompt_tokens for r in reqs]
    outputs = [r.output_tokens for r in reqs]
    assert min(prompts) >= 500 and max(prompts) <= 1500 and min(outputs) >= 100 and max(outputs) <= 300
    assert sum(prompts) / len(prompts) == pytest.approx(1000, rel=0.03)
    assert len(set(prompts)) > 500
    assert reqs == poisson_requests(2000, 5.0, 1000, 200, seed=4, range_ratio=0.5)
    assert {r.prompt_tokens for r in poisson_requests(50, 5.0, 1000, 200)} == {1000}
    with pytest.raises(WorkloadError, match="range ratio"):
        poisson_requests(5, 1.0, 1000, 200, range_ratio=1.0)
    res = simulate_serving(WL, HW, poisson_requests(100, 1.0, 1024, 64, range_ratio=0.5))
    assert len(res.requests) == 100


def test_swapping_preempted_caches_to_host_memory_instead_of_recomputing():
    """vLLM's swap preemption: under KV pressure a preempted sequence's cache goes to host memory
    over the host link and comes back when it is readmitted, so long prompts are not prefilled
    again; a host pool too small for any cache falls back to recomputation."""
    reqs = poisson_requests(120, 0.0, 4096, 512)
    tight = ServingOptions(kv_memory_fraction=0.6)
    recompute = simulate_serving(WL, HW, reqs, tight)
    swap = simulate_serving(WL, HW, reqs, replace(tight, kv_swap_bytes=200e9))
    tiny = simulate_serving(WL, HW, reqs, replace(tight, kv_swap_bytes=1e6))
    assert recompute.preemptions > 0 and recompute.swaps == 0 and tiny.swaps == 0
    assert swap.swaps == swap.preemptions > 0
    assert len(swap.requests) == len(reqs)
    assert swap.summary()["output_tokens_per_s"] > 1.2 * recompute.summary()["output_tokens_per_s"]


def test_kv_swap_option_on_the_command_line(capsys):
    from simhw.cli import main
    args = ["serve", "workloads/llama2-70b-decode.yaml", "--hw", "dgx-a100", "--rate", "0", "--requests", "60",
            "--prompt-tokens", "4096", "--output-tokens", "512", "--memory-fraction", "0.6"]
    assert main(args + ["--kv-swap", "200 GB"]) == 0
    assert "swapped to host" in capsys.readouterr().out
    assert main(args + ["--kv-swap", "fast"]) == 2
    assert "--kv-swap" in capsys.readouterr().err
