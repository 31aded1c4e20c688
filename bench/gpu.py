"""One GPU benchmark run: decode speed, evaluator throughput, MoE expert skipping and search rate, in one call.

Random-weight models built from configs of real shapes (no downloads): SmolLM2-135M, Llama-3-8B and, for
expert skipping, OLMoE-1B-7B. Each is made with ``AutoModelForCausalLM.from_config(config, dtype=...)``
directly on the device and dropped before the next, so one H200 holds each in turn. Measured:

- decode tokens/s of the full model and of a schedule skipping every fifth middle layer, batch 1, 8, 64
  (``colasearch.benchmark.measure_speedup``: the ABBA protocol of colasearch.speed, flagged above the bound);
- evaluator throughput: schedules scored per minute on the fast path (packed items, prefix cache), tree-search
  like proposals (each one edit of an earlier one), next to the plain path on a few of them;
- MoE: forward speedup at 50% of routed expert work skipped (calibrated importance, bisected threshold);
- a searcher's (MCTS) evaluations per minute through the evaluator.

Random weights give meaningless quality; only the timings count. The task is the built-in capitals questions
through a character tokenizer sized to each model's vocabulary. Needs torch, transformers and pydantic
(carry its wheels if the machine lacks it); not Ray, Optuna or gguf. Prints a table; ``--json PATH`` keeps it.

    python bench/gpu.py                                     # a GPU: everything, bfloat16, under 8 minutes
    python bench/gpu.py --device cpu --tiny --dtype float32  # smoke test on a CPU (tiny shapes, seconds)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

# Real shapes, written out so nothing is downloaded (values from the models' config.json).
SMOLLM2_135M = dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
                    rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act="silu")
LLAMA3_8B = dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192,
                 rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu")
OLMOE_1B_7B = dict(model_type="olmoe", hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
                   num_attention_heads=16, num_key_value_heads=16, vocab_size=50304, num_experts=64,
                   num_experts_per_tok=8, max_position_embeddings=4096, rope_theta=10000.0, tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512)
TINY_MOE = dict(TINY, intermediate_size=32, num_experts=8, num_experts_per_tok=2, num_key_value_heads=4)

DENSE = {"smollm2-135m-shape": SMOLLM2_135M, "llama3-8b-shape": LLAMA3_8B}


def build(shape: dict, tiny_overrides: dict | None, device: torch.device, dtype: torch.dtype, name: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    values = dict(shape)
    family = values.pop("model_type")
    values.update(tiny_overrides or {})
    config = AutoConfig.for_model(family, pad_token_id=0, bos_token_id=1, eos_token_id=2, **values)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    model._colasearch_name = name
    return model


def release(model) -> None:
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def skip_every_fifth(model):
    from colasearch import Schedule

    layers = model.config.num_hidden_layers
    return Schedule.from_layers([layer for layer in range(layers) if not (1 < layer < layers - 2 and layer % 5 == 3)],
                                model=model)


def tree_proposals(model, count: int, seed: int = 0):
    """Schedules the way a tree search proposes them: each drops one more middle layer of an earlier one."""
    from colasearch import Schedule

    rng = random.Random(seed)
    layers = model.config.num_hidden_layers
    chains = [list(range(layers))]
    while len(chains) < count + 1:
        parent = rng.choice(chains[-4:])
        droppable = [layer for layer in parent if 0 < layer < layers - 1]
        if len(droppable) <= layers // 2:
            parent = list(range(layers))
            droppable = list(range(1, layers - 1))
        chains.append([layer for layer in parent if layer != rng.choice(droppable)])
    return [Schedule.from_layers(chain, model=model) for chain in chains[1:]]


def evaluator_for(model, search_size: int):
    from colasearch.evaluator import Evaluator
    from colasearch.tasks import load_task
    from colasearch.tasks.char_tokenizer import CharTokenizer

    tokenizer = CharTokenizer(vocab_size=model.config.vocab_size)
    return Evaluator.from_options(model, tokenizer, load_task("builtin:capitals"), search_size=search_size,
                                  heldout_size=8)


def timed(function, device) -> tuple[float, object]:
    from colasearch.devices import synchronize

    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return time.perf_counter() - start, value


def decode_speed(model, args, rows, name):
    from colasearch.benchmark import measure_speedup
    from colasearch.cost import CostModel
    from colasearch.speed import SpeedProtocol

    schedule = skip_every_fifth(model)
    ideal = CostModel.from_model(model).ideal_speedup(schedule)
    for batch in args.batches:
        row = measure_speedup(model, schedule, SpeedProtocol(pairs=args.pairs, tokens=args.new_tokens, batch_size=batch))
        measured = row.verdict()
        rows.append((name, f"decode batch {batch}",
                     f"{batch / row.full_seconds_per_token:.0f} -> {batch / row.schedule_seconds_per_token:.0f} tok/s, "
                     f"{measured} measured [{row.interval_text()}] / {row.bound:.3f}x bound / "
                     f"{ideal:.3f}x ideal"))
        print(*rows[-1], sep=" | ", flush=True)


def eval_throughput(model, args, rows, name):
    from colasearch.evaluator import reference_scores

    device = next(model.parameters()).device
    evaluator = evaluator_for(model, args.items)
    proposals = tree_proposals(model, args.schedules)
    evaluator.evaluate(None)  # packing and the full model's states are one-off work
    seconds, _ = timed(lambda: [evaluator.evaluate(schedule) for schedule in proposals], device)
    stats = evaluator.stats
    plain_count = min(2, len(proposals))
    plain_seconds, _ = timed(lambda: [reference_scores(model, schedule, evaluator.packed("search"))
                                      for schedule in proposals[:plain_count]], device)
    fast_rate, plain_rate = 60 * len(proposals) / seconds, 60 * plain_count / plain_seconds
    rows.append((name, f"eval {args.items} items", f"{fast_rate:.1f} evals/min fast, {plain_rate:.1f} plain "
                 f"({fast_rate / plain_rate:.1f}x); prefix cache {stats['prefix_cache_hits']} hits, "
                 f"{stats['prefix_cache_evictions']} evictions of {evaluator.prefix_cache.max_bytes / 2**30:.1f} GiB"))
    print(*rows[-1], sep=" | ", flush=True)


def searcher_rate(model, args, rows, name):
    """MCTS asks, the evaluator scores, MCTS is told: the in-process loop of ``colasearch run --workers 0``."""
    from colasearch.objectives import make_objective
    from colasearch.searchers.base import SearchSpace, make_searcher

    evaluator = evaluator_for(model, args.items)
    objective = make_objective("constrained", metric="acc", direction="maximize", target_speedup=1.25)
    space = SearchSpace.for_model(model, target_speedup=1.25)
    searcher = make_searcher("mcts", space, objective, seed=0)
    evaluator.evaluate(None)
    searcher.prepare(evaluator)
    seen: set[str] = set()
    device = next(model.parameters()).device

    def search():
        while len(seen) < args.budget and not searcher.finished:
            asked = searcher.ask(1)
            if not asked:
                break
            for schedule in asked:
                seen.add(schedule.key)
                searcher.tell(schedule, evaluator.evaluate(schedule))

    seconds, _ = timed(search, device)
    rows.append((name, f"mcts budget {args.budget}", f"{60 * len(seen) / seconds:.1f} evaluations/min "
                 f"({len(seen)} in {seconds:.1f}s)"))
    print(*rows[-1], sep=" | ", flush=True)


def moe_speed(args, rows, device, dtype):
    from colasearch import Schedule, scheduled
    from colasearch.benchmark import prefill_seconds
    from colasearch.cost import CostModel
    from colasearch.moe import calibrate_importance, expert_skip_stats, expert_skipping_section, threshold_for_skip_ratio

    name = "olmoe-1b-7b-shape"
    model = build(OLMOE_1B_7B, TINY_MOE if args.tiny else None, device, dtype, name)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    calibration = torch.randint(3, vocab, (4, 64), generator=generator).to(device)
    batch = torch.randint(3, vocab, (args.moe_batch, args.moe_seq), generator=generator).to(device)
    importance = calibrate_importance(model, calibration)
    base = Schedule.identity(model).with_fields(experts=expert_skipping_section(importance, 0.0))
    tau = threshold_for_skip_ratio(model, base, 0.5, batch, tolerance=0.02)
    schedule = base.with_fields(experts=expert_skipping_section(importance, tau))
    ratio = expert_skip_stats(model, schedule, batch).ratio

    from colasearch.speed import FULL, SpeedProtocol, measure_pairs

    def seconds_per_token(variant):
        with scheduled(model, None if variant == FULL else schedule):
            return prefill_seconds(model, batch) / batch.numel()

    # The same ABBA protocol as decode, over whole forwards; its bound counts routed experts as skippable.
    cost = CostModel.from_model(model)
    row = measure_pairs(seconds_per_token, cost.layer_bound(schedule), SpeedProtocol(pairs=args.pairs))
    ideal = cost.ideal_speedup(schedule, expert_skip_ratio=ratio)
    measured = row.verdict()
    rows.append((name, f"moe forward {args.moe_batch}x{args.moe_seq}",
                 f"{row.full_seconds_per_token * batch.numel() * 1e3:.1f} ms full; skip {ratio:.2f} of expert work: "
                 f"{measured} measured [{row.interval_text()}] / {ideal:.3f}x ideal"))
    print(*rows[-1], sep=" | ", flush=True)
    release(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (with --tiny, for a smoke test)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (same layer counts cut to 6), for a CPU")
    parser.add_argument("--sections", default="decode,eval,search,moe")
    parser.add_argument("--models", default=",".join(DENSE))
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=12, help="ABBA pairs of the speed protocol (even)")
    parser.add_argument("--items", type=int, default=64, help="items of the search split")
    parser.add_argument("--schedules", type=int, default=40, help="schedules the evaluator scores")
    parser.add_argument("--budget", type=int, default=40, help="evaluations of the searcher")
    parser.add_argument("--moe-batch", type=int, default=8)
    parser.add_argument("--moe-seq", type=int, default=512)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    try:
        import pydantic  # noqa: F401
    except ImportError:
        sys.exit("bench/gpu.py needs pydantic (colasearch's schedule files); carry its wheels: "
                 "pip install --no-index --find-links WHEELS pydantic")
    from colasearch.devices import resolve_device, resolve_dtype
    from colasearch.errors import ColasearchError

    try:
        device = resolve_device(args.device)
        dtype = resolve_dtype(args.dtype, device)
    except ColasearchError as error:
        sys.exit(f"bench/gpu.py: {error}")
    args.batches = tuple(int(size) for size in args.batches.split(","))
    if args.tiny:
        args.moe_seq = min(args.moe_seq, 64)
    sections = set(args.sections.split(","))
    from colasearch.benchmark import device_name

    rows: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    print(f"torch {torch.__version__}, {args.dtype}, {'tiny shapes' if args.tiny else 'real shapes'}", flush=True)
    for name in args.models.split(","):
        model = build(DENSE[name], TINY if args.tiny else None, device, dtype, name)
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters on {device_name(model)}",
              flush=True)
        if "decode" in sections:
            decode_speed(model, args, rows, name)
        if "eval" in sections:
            eval_throughput(model, args, rows, name)
        if "search" in sections:
            searcher_rate(model, args, rows, name)
        release(model)
    if "moe" in sections:
        moe_speed(args, rows, device, dtype)

    print(f"\n| model | measurement | result |  ({time.perf_counter() - started:.0f}s in all)\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(("model", "measurement", "result"), row)) for row in rows], indent=1))


if __name__ == "__main__":
    main()
