"""Forward speed of MoDES expert skipping on a random MoE, at 50% and 80% of routed expert work skipped.

A random Mixtral-style model (8 experts, top-2, hidden 512, 8 layers by default) is calibrated
(alpha_l by KL), the text threshold for each target skip ratio is found by bisection, and full and
skipping forwards are interleaved (rotating which goes first). Reported: medians of the per-round
ratios, next to the ideal ratio from the cost model given the *measured* skip ratio (attention, the
router and the output projection are not skippable, so the ideal is below 1 / (1 - skip)).

    python bench/moe_speed.py [--device cpu] [--threads 1] [--batch 4] [--seq 128] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from colasearch import Schedule, scheduled  # noqa: E402
from colasearch.benchmark import device_name, prefill_seconds  # noqa: E402
from colasearch.cost import CostModel  # noqa: E402
from colasearch.moe import (  # noqa: E402
    calibrate_importance, expert_skip_stats, expert_skipping_section, threshold_for_skip_ratio,
)


def random_moe(args):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(args.seed)
    config = AutoConfig.for_model(
        "mixtral", num_hidden_layers=args.layers, hidden_size=args.hidden, intermediate_size=args.expert_size,
        num_local_experts=args.experts, num_experts_per_tok=args.top_k, num_attention_heads=8, num_key_value_heads=8,
        vocab_size=args.vocab, max_position_embeddings=4096, tie_word_embeddings=False, pad_token_id=0,
    )
    config._attn_implementation = "sdpa"
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(args.device).eval()
    if args.experts_implementation:
        model.config._experts_implementation = args.experts_implementation
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--expert-size", type=int, default=1024)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--targets", default="0.5,0.8")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--experts-implementation", default=None, help="eager, grouped_mm or batched_mm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = random_moe(args)
    generator = torch.Generator().manual_seed(args.seed)
    calibration = torch.randint(3, args.vocab, (4, 64), generator=generator).to(args.device)
    batch = torch.randint(3, args.vocab, (args.batch, args.seq), generator=generator).to(args.device)
    importance = calibrate_importance(model, calibration)
    base = Schedule.identity(model).with_fields(experts=expert_skipping_section(importance, 0.0))
    costs = CostModel.from_model(model)

    variants = {}
    for target in (float(value) for value in args.targets.split(",")):
        tau = threshold_for_skip_ratio(model, base, target, batch, tolerance=0.01)
        schedule = base.with_fields(experts=expert_skipping_section(importance, tau))
        variants[target] = (tau, schedule, expert_skip_stats(model, schedule, batch).ratio)

    def timed(schedule):
        with scheduled(model, schedule):
            return prefill_seconds(model, batch)

    candidates = [None] + [schedule for _, schedule, _ in variants.values()]
    for schedule in candidates:  # warm-up, not timed
        timed(schedule)
    times = {index: [] for index in range(len(candidates))}
    for repeat in range(args.repeats):
        shift = repeat % len(candidates)
        for index in list(range(len(candidates)))[shift:] + list(range(len(candidates)))[:shift]:
            times[index].append(timed(candidates[index]))

    implementation = model.config._experts_implementation
    print(f"random Mixtral-style MoE: {args.layers} layers, hidden {args.hidden}, {args.experts} experts of "
          f"{args.expert_size}, top-{args.top_k}, vocab {args.vocab}, {args.dtype}, experts_implementation="
          f"{implementation}; on {device_name(model)}; forward of {args.batch}x{args.seq} tokens, "
          f"{args.repeats} interleaved rounds, medians of per-round ratios")
    print(f"full forward: median {statistics.median(times[0]) * 1e3:.1f} ms")
    print("| target skip | tau | measured skip | forward ms | measured speedup | ideal speedup | measured / ideal |")
    print("|---|---|---|---|---|---|---|")
    for index, (target, (tau, schedule, ratio)) in enumerate(variants.items(), start=1):
        speedup = statistics.median(full / skipped for full, skipped in zip(times[0], times[index]))
        ideal = costs.ideal_speedup(schedule, expert_skip_ratio=ratio)
        print(f"| {target:.0%} | {tau:.4g} | {ratio:.3f} | {statistics.median(times[index]) * 1e3:.1f} "
              f"| {speedup:.3f}x | {ideal:.3f}x | {speedup / ideal:.3f} |", flush=True)


if __name__ == "__main__":
    main()
