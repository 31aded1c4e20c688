"""ARC-Easy accuracy three ways on the same items and the same model object: lm-eval's own
``simple_evaluate`` (HFLM around the model), colasearch's lm-eval adapter (``lm-eval:NAME`` over a
local task YAML), and colasearch's own multiple-choice path (``jsonl:``); for the full model and
with a schedule applied. Prints a markdown table and every item on which lm-eval and ``jsonl:``
choose differently (by acc or by acc_norm), with both paths' per-choice log-likelihoods.

    python bench/lm_eval_parity.py --data DIR --items 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from benchdata import add_data_option, data_dir

ROOT = Path(__file__).resolve().parents[1]
TASK = "arc_easy_local"


def harness(model, tokenizer, folder: Path, count: int, batch_size: int):
    """lm-eval alone: accuracy, acc_norm, per-document correctness (acc and acc_norm) and per-choice
    log-likelihoods."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from colasearch.tasks.lm_eval_adapter import task_manager_for

    output = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size), tasks=[TASK],
                             task_manager=task_manager_for(TASK, str(folder)), bootstrap_iters=0,
                             samples={TASK: list(range(count))}, log_samples=True)
    results = output["results"][TASK]
    correct = {sample["doc_id"]: bool(sample["acc"]) for sample in output["samples"][TASK]}
    correct_norm = {sample["doc_id"]: bool(sample["acc_norm"]) for sample in output["samples"][TASK]}
    # filtered_resps holds one (log-likelihood, is_greedy) pair per choice, in choice order.
    loglikelihoods = {sample["doc_id"]: [float(response[0]) for response in sample["filtered_resps"]]
                      for sample in output["samples"][TASK]}
    return results["acc,none"], results["acc_norm,none"], correct, correct_norm, loglikelihoods


def ours(model, tokenizer, task, schedule):
    """colasearch's jsonl: path: accuracy, acc_norm, per-item correctness (acc and acc_norm) and
    per-choice log-likelihoods, in file order."""
    from colasearch.evaluator import reference_scores

    items = task.items()
    packed = task.pack(items, tokenizer)
    scores = reference_scores(model, schedule, packed)
    metrics = task.metrics(items, packed, scores)
    correct_norm = dict(enumerate(bool(value) for value in task.item_values(items, packed, scores)["acc_norm"]))
    correct, choices = {}, {}
    for index, (item, sequence, score) in enumerate(zip(items, packed, scores)):
        loglikelihoods = [float(value) for value in task.choice_loglikelihoods(sequence, score)]
        choices[index] = loglikelihoods
        correct[index] = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__) == item.data.label
    return metrics["acc"], metrics["acc_norm"], correct, correct_norm, choices


def _rounded(values) -> str:
    return "[" + ", ".join(f"{value:.3f}" for value in values) + "]"


def _difference(label, metric, task, index, harness_right, our_right, harness_choices, our_choices) -> str:
    """One item the two paths decide differently: its per-choice log-likelihoods on both, and for
    acc_norm the normalised values each path compares (lm-eval divides by the choice's characters,
    colasearch by those of the continuation it scores, leading space included)."""
    item = task.items()[index]
    line = (f"{label} {metric}: item {index} ({item.id}, label {item.data.label}): lm-eval "
            f"{'right' if harness_right else 'wrong'} {_rounded(harness_choices)}, jsonl: "
            f"{'right' if our_right else 'wrong'} {_rounded(our_choices)}")
    if metric == "acc_norm":
        choices = item.data.choices
        line += (f"; normalised lm-eval {_rounded(v / max(1, len(c)) for v, c in zip(harness_choices, choices))}"
                 f", jsonl {_rounded(v / max(1, len(task.continuation(c))) for v, c in zip(our_choices, choices))}")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--schedule", type=Path, default=ROOT / "schedules" / "smollm2-135m-unified-24.yaml")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    add_data_option(parser)
    args = parser.parse_args()
    data = data_dir(parser, args, "arc_easy.jsonl")
    torch.set_num_threads(args.threads)

    from colasearch import Schedule, load_model
    from colasearch.runtime import scheduled
    from colasearch.tasks import load_task
    from colasearch.tasks.lm_eval_adapter import write_multiple_choice_task

    model, tokenizer = load_model("smollm2-135m")
    folder = Path(tempfile.mkdtemp(prefix="lm_eval_parity_"))
    subset = folder / "arc_easy.jsonl"  # the first N items: both sides read this one file
    with (data / "arc_easy.jsonl").open() as source:
        subset.write_text("".join(line for _, line in zip(range(args.items), source)))
    write_multiple_choice_task(subset, folder, TASK)  # the join ARC-Easy uses in colasearch: "\nAnswer: "
    adapter_task = load_task(f"lm-eval:{TASK}", include_path=str(folder), batch_size=args.batch_size)
    jsonl_task = load_task(f"jsonl:{subset}")

    lines = ["| model | items | lm-eval simple_evaluate acc | adapter acc | jsonl: acc | "
             "lm-eval acc_norm | jsonl: acc_norm | items chosen differently (acc) | (acc_norm) | lm-eval s | adapter s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    differences = []
    for label, schedule in (("full", None), (f"schedule {args.schedule.stem}", Schedule.load(args.schedule))):
        with scheduled(model, schedule):
            started = time.perf_counter()
            harness_acc, harness_norm, harness_correct, harness_correct_norm, harness_choices = harness(
                model, tokenizer, folder, args.items, args.batch_size)
            harness_seconds = time.perf_counter() - started
            # The adapter runs each shared context once (ColasearchLM); HFLM runs it once per choice.
            started = time.perf_counter()
            adapter_acc = adapter_task.run(model, tokenizer, adapter_task.items())["acc"]
            adapter_seconds = time.perf_counter() - started
        our_acc, our_norm, our_correct, our_correct_norm, our_choices = ours(model, tokenizer, jsonl_task, schedule)
        differing = [index for index in our_correct if our_correct[index] != harness_correct[index]]
        differing_norm = [index for index in our_correct_norm if our_correct_norm[index] != harness_correct_norm[index]]
        for metric, indices, harness_right, our_right in (("acc", differing, harness_correct, our_correct),
                                                          ("acc_norm", differing_norm, harness_correct_norm, our_correct_norm)):
            differences += [_difference(label, metric, jsonl_task, index, harness_right[index], our_right[index],
                                        harness_choices[index], our_choices[index]) for index in indices]
        lines.append(f"| {label} | {args.items} | {harness_acc:.3f} | {adapter_acc:.3f} | {our_acc:.3f} | "
                     f"{harness_norm:.3f} | {our_norm:.3f} | {len(differing)} | {len(differing_norm)} | "
                     f"{harness_seconds:.1f} | {adapter_seconds:.1f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    print("\n".join(differences) or "no item is chosen differently")


if __name__ == "__main__":
    main()
