"""One evaluation of a generation task: decoding every item (before) against the teacher-forced path (after).

A LAMBADA-style task is built from WikiText-2: for each paragraph, its last sentence without its
last word is the prompt and that word the answer (exact match of the first line of the greedy
completion, 16 new tokens, the task defaults). The full model is scored the old way (every item
decoded for 16 tokens with ``model.generate``) and the new way (one teacher-forced forward decides
most items, only the rest are decoded, each row stopping once its outcome is known); both must
agree. Then a schedule that shares the first 20 layers, as a search's next proposal would, is scored
the new way with the prefix cache warm.

    python bench/generation_speed.py --data /work/shared/data --items 64
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch


def lambada_rows(text: str, count: int, min_words: int = 8, max_words: int = 48) -> list[dict]:
    """The last sentence of each paragraph (WikiText's tokenized style: `` . `` ends a sentence)."""
    rows = []
    for number, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("=") or not line.endswith(" ."):
            continue
        sentence = line[:-2].split(" . ")[-1].replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
        words = sentence.split()
        if not min_words <= len(words) <= max_words or not re.fullmatch(r"[A-Za-z]{3,}", words[-1]):
            continue
        rows.append({"id": f"wikitext-{number}", "prompt": " ".join(words[:-1]), "answer": words[-1]})
        if len(rows) == count:
            break
    return rows


def timed(evaluator, schedule):
    started, cpu = time.perf_counter(), time.process_time()
    result = evaluator.evaluate(schedule)
    return (time.perf_counter() - started, time.process_time() - cpu), result.quality["exact_match"]


def timed_plain_generate(evaluator, schedule):
    """What a generation task did before: ``model.generate`` of all 16 tokens for every item."""
    from colasearch.runtime import scheduled

    task, items = evaluator.task, evaluator.split_items("search")
    started, cpu = time.perf_counter(), time.process_time()
    with scheduled(evaluator.model, schedule):
        completions = task.completions(evaluator.model, evaluator.tokenizer, items)
    hits = sum(task.is_match(text, item.data.answer) for text, item in zip(completions, items))
    return (time.perf_counter() - started, time.process_time() - cpu), hits / len(items)


def seconds(times) -> str:
    """Wall and CPU seconds: on a shared machine the CPU time is the steadier of the two."""
    return f"{times[0]:6.1f} s wall {times[1]:6.1f} s CPU"


def ratio(before, after) -> str:
    return f"{before[0] / after[0]:.1f}x wall {before[1] / after[1]:.1f}x CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding wikitext2_test_raw.txt")
    parser.add_argument("--items", type=int, default=64, help="items in the search split")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--early-stop", action="store_true", help="also time decoding every item with the early stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from colasearch.evaluator import Evaluator
    from colasearch.loading import load_model
    from colasearch.schedule import Schedule
    from colasearch.tasks import load_task

    source = args.data / "wikitext2_test_raw.txt"
    if not source.is_file():
        print(f"{source}: not found", file=sys.stderr)
        return 2
    rows = lambada_rows(source.read_text(encoding="utf-8"), args.items + 1)
    folder = Path(tempfile.mkdtemp(prefix="generation-speed-"))
    path = folder / "lambada_wikitext.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    model, tokenizer = load_model(args.model)
    layers = len(model.model.layers)
    # A search's next proposal: the full chain with three late layers dropped, so it shares the first 20.
    child = Schedule.from_layers([layer for layer in range(layers) if layer not in (layers - 10, layers - 6, layers - 3)],
                                 model=model)
    search = len(rows) - 1
    decoding = Evaluator.from_options(model, tokenizer, load_task(f"jsonl:{path}", teacher_forced=False),
                                      search_size=search, heldout_size=1)
    scored_task = load_task(f"jsonl:{path}")
    scored = Evaluator.from_options(model, tokenizer, scored_task, search_size=search, heldout_size=1)
    print(f"{search} search items from {source.name}, {args.model}, {args.threads} thread(s), 16 new tokens")

    before, before_match = timed_plain_generate(decoding, None)
    print(f"before: model.generate, 16 tokens for every item      {seconds(before)}  exact match {before_match:.3f}")
    if args.early_stop:
        early, early_match = timed(decoding, None)
        print(f"decode every item, each row stopping once decided     {seconds(early)}  exact match {early_match:.3f}")
    after, after_match = timed(scored, None)
    decided = scored_task.counts["teacher_forced"]
    print(f"after: teacher-forced forward + decoding the undecided {seconds(after)}  exact match {after_match:.3f}  "
          f"({decided} of {search} decided by the forward)  {ratio(before, after)}")
    warm, warm_match = timed(scored, child)
    print(f"after, the next schedule (prefix cache warm)          {seconds(warm)}  exact match {warm_match:.3f}  "
          f"({scored_task.counts['teacher_forced'] - decided} of {search} decided)  {ratio(before, warm)}")
    if before_match != after_match or (args.early_stop and early_match != after_match):
        print("MISMATCH between the decoded and the teacher-forced exact match", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
