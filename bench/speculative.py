"""Self-speculative decoding on the embedded model: plain greedy vs a schedule drafting for the full model.

For each draft schedule, plain greedy decoding (``model.generate``) and speculative decoding run
interleaved on the same prompts (alternating which goes first); reported are tokens/s of both, the
median of the per-run time ratios, the acceptance rate, whether every output is identical, and the
speedup the speculative-decoding formula expects from the acceptance rate, once with the draft's
ideal cost (CostModel) and once with its measured forward cost on this device.

    python bench/speculative.py [--tokens 32] [--repeats 2] [--draft-tokens adaptive] [--prompts 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from time import perf_counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from colasearch import Schedule, load_model, scheduled  # noqa: E402
from colasearch.benchmark import cache_kwarg, device_name, new_cache  # noqa: E402
from colasearch.cost import CostModel  # noqa: E402
from colasearch.runtime import greedy_generate  # noqa: E402
from colasearch.speculative import expected_speedup, speculative_generate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_speed import balanced_keep  # noqa: E402

PROMPTS = (
    "Explain why the sky is blue in two sentences.",
    "List three fruits that are red and say one fact about each.",
    "Write a short note inviting a colleague to lunch on Friday.",
)
SEARCHED = Path(__file__).resolve().parent.parent / "schedules" / "smollm2-135m-unified-24.yaml"


def drafts(model) -> dict[str, Schedule]:
    chosen = {f"balanced {keep}/30": balanced_keep(30, keep) for keep in (27, 24, 20, 15)}
    schedules = {name: Schedule.from_layers(layers, model=model) for name, layers in chosen.items()}
    if SEARCHED.exists():
        schedules[f"searched ({SEARCHED.name})"] = Schedule.load(SEARCHED)
    return schedules


@torch.no_grad()
def _forward_seconds(model, cache, step) -> float:
    kwargs = {cache_kwarg(model): cache, "use_cache": True}
    start = perf_counter()
    model(input_ids=step, **kwargs)
    elapsed = perf_counter() - start
    cache.crop(-step.shape[1])
    return elapsed


@torch.no_grad()
def cost_ratio(model, prompt, schedule: Schedule | None, tokens: int, pairs: int = 9) -> float:
    """Median over interleaved pairs of (a ``tokens``-token forward of ``schedule``) / (a 1-token full forward).

    Both run on top of the prompt's cache; pairs alternate their order, so load spikes hit both sides.
    """
    caches = {}
    for full in (True, False):
        with scheduled(model, None if full else schedule):
            caches[full] = new_cache(model)
            model(input_ids=prompt, **{cache_kwarg(model): caches[full], "use_cache": True})
    ratios = []
    for pair in range(pairs):
        times = {}
        for full in ((True, False) if pair % 2 == 0 else (False, True)):
            with scheduled(model, None if full else schedule):
                times[full] = _forward_seconds(model, caches[full], prompt[:, -(1 if full else tokens):])
        ratios.append(times[False] / times[True])
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--draft-tokens", default="adaptive")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="How many of the built-in prompts to use.")
    args = parser.parse_args()
    draft_tokens = args.draft_tokens if args.draft_tokens == "adaptive" else int(args.draft_tokens)

    model, tokenizer = load_model(args.model)
    cost = CostModel.from_model(model)
    encoded = []
    for prompt in PROMPTS[: args.prompts]:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        encoded.append(tokenizer(text, return_tensors="pt"))
    schedules = drafts(model)
    probe = encoded[0].input_ids

    print(f"model {args.model} on {device_name(model)}; {len(encoded)} chat prompts, {args.tokens} new tokens each, "
          f"draft tokens {args.draft_tokens}, {args.repeats} interleaved repeats; a 5-token full forward costs "
          f"{cost_ratio(model, probe, None, 5):.2f}x a 1-token one")
    print("| draft | layers | ideal draft speedup | measured draft cost | acceptance a | accepted / drafted | "
          "tokens per full forward | plain tok/s | speculative tok/s | measured speedup | expected (ideal cost) | "
          "expected (measured cost) | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, schedule in schedules.items():
        draft_cost = cost_ratio(model, probe, schedule, 1)
        plain_times, speculative_times, ratios, identical = [], [], [], True
        totals = dict(accepted=0, rejections=0, drafted=0, rounds=0, new_tokens=0, full_forward_calls=0)
        for repeat in range(args.repeats):
            for index, batch in enumerate(encoded):
                times = {}
                for variant in (("plain", "speculative") if (repeat + index) % 2 == 0 else ("speculative", "plain")):
                    start = perf_counter()
                    if variant == "plain":
                        reference = greedy_generate(model, batch.input_ids, batch.attention_mask, args.tokens)
                    else:
                        output, stats = speculative_generate(model, schedule, batch.input_ids, batch.attention_mask,
                                                             max_new_tokens=args.tokens, draft_tokens=draft_tokens)
                    times[variant] = perf_counter() - start
                identical &= torch.equal(output, reference)
                new_tokens = output.shape[1] - batch.input_ids.shape[1]
                plain_times.append(new_tokens / times["plain"])
                speculative_times.append(new_tokens / times["speculative"])
                ratios.append(times["plain"] / times["speculative"])
                if repeat == 0:
                    for field in totals:
                        totals[field] += getattr(stats, field)
        trials = totals["accepted"] + totals["rejections"]
        acceptance = totals["accepted"] / trials if trials else 0.0
        mean_k = totals["drafted"] / totals["rounds"] if totals["rounds"] else 1.0
        rounded_k = max(1, round(mean_k))
        ideal = cost.ideal_speedup(schedule)
        expected_ideal = expected_speedup(acceptance, rounded_k, 1 / ideal)
        # Measured costs: k draft forwards plus a (k+1)-token verify, in units of one full forward.
        verify_ratio = cost_ratio(model, probe, None, rounded_k + 1)
        tokens_per_round = rounded_k + 1.0 if acceptance >= 1 else (1 - acceptance ** (rounded_k + 1)) / (1 - acceptance)
        expected_measured = tokens_per_round / (rounded_k * draft_cost + verify_ratio)
        print(f"| {name} | {len(schedule.layers)} | {ideal:.3f}x | {draft_cost:.3f} | {acceptance:.3f} | "
              f"{totals['accepted']}/{totals['drafted']} | {totals['new_tokens'] / totals['full_forward_calls']:.2f} | "
              f"{statistics.median(plain_times):.1f} | {statistics.median(speculative_times):.1f} | "
              f"{statistics.median(ratios):.3f}x | {expected_ideal:.3f}x | {expected_measured:.3f}x | "
              f"{'yes' if identical else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
