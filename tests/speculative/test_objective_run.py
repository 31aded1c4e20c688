"""``--objective speculative`` end to end: the evaluator measures acceptance, the objective ranks drafts by it."""

import json
import math
import pickle

import pytest
import yaml

from colasearch.evaluator import Evaluator
from colasearch.objectives import make_objective
from colasearch.schedule import Schedule
from colasearch.engine.session import RunContext, search_with
from colasearch.tasks import load_task
from colasearch.tasks.char_tokenizer import CharTokenizer
from colasearch.testing import make_tiny_model

OPTIONS = {"speculative_prompts": 3, "draft_tokens": 3, "draft_new_tokens": 6}


@pytest.fixture(scope="module")
def model():
    return make_tiny_model("llama", num_layers=6)


def _evaluator(model, **options):
    return Evaluator.from_options(model, CharTokenizer(), load_task("builtin:capitals"), search_size=8, heldout_size=6,
                                  **options)


def test_identity_draft_is_always_accepted_and_quality_is_unchanged(model):
    plain, speculative = _evaluator(model), _evaluator(model, **OPTIONS)
    identity = Schedule.identity(model)
    for schedule in (identity, None):
        result = speculative.evaluate(schedule, "heldout")
        assert result.acceptance_rate == 1.0 and result.draft_tokens == 3
        assert result.quality == plain.evaluate(schedule, "heldout").quality
    # Results without the acceptance entry are never answered for a run that needs it.
    assert speculative.result_key(identity, "search") != plain.result_key(identity, "search")
    assert plain.evaluate(identity).acceptance_rate is None


def test_prompts_are_contexts_of_the_split(model):
    evaluator = _evaluator(model, **OPTIONS)
    prompts = evaluator.speculative_prompts("search", 3)
    first = evaluator.split_items("search")[0].data
    assert len(prompts) == 3 and prompts[0] == CharTokenizer()(first.context + "\nAnswer:").input_ids[-64:]


def test_objective_ranks_the_better_matching_draft_higher(model):
    evaluator = _evaluator(model, **OPTIONS)
    objective = make_objective("speculative", "acc", draft_tokens=3)
    # Drafts of equal cost (one middle layer skipped each): only the acceptance tells them apart.
    drafts = [Schedule.from_layers([layer for layer in range(6) if layer != skipped]) for skipped in (1, 2, 3, 4)]
    results = [evaluator.evaluate(draft) for draft in drafts]
    assert len({round(result.ideal_speedup, 9) for result in results}) == 1
    acceptances = [result.acceptance_rate for result in results]
    values = [objective.values(result)[0] for result in results]
    assert len(set(acceptances)) > 1 and all(0.0 <= a <= 1.0 for a in acceptances)
    assert sorted(range(4), key=values.__getitem__) == sorted(range(4), key=acceptances.__getitem__)
    # The identity draft is always accepted but saves nothing: exactly 1x.
    assert objective.values(evaluator.evaluate(Schedule.identity(model)))[0] == pytest.approx(1.0)


def test_speculative_search_finds_a_draft_with_its_acceptance(model):
    tokenizer, task = CharTokenizer(), load_task("builtin:capitals")
    evaluator = Evaluator.from_options(model, tokenizer, task, search_size=8, heldout_size=6, **OPTIONS)
    context = RunContext("tiny", model, tokenizer, task, evaluator, "builtin:capitals")
    # A target far above what any draft's expected speedup reaches: it bounds the draft's cost only.
    outcome, objective = search_with(context, "random", budget=3, target_speedup=1.25, seed=0,
                                     objective_name="speculative")
    assert outcome.evaluations == 3 and objective.name == "speculative"
    assert all(result.acceptance_rate is not None for _, result in outcome.records)
    assert all(result.ideal_speedup >= 1.25 * (1 - 1e-9) for _, result in outcome.records)
    best = max(objective.values(result)[0] for _, result in outcome.records)
    assert math.isfinite(outcome.best_value) and outcome.best_value == pytest.approx(best)
    heldout = context.fresh_evaluator().evaluate(outcome.best, "heldout")
    assert "acc" in heldout.quality and 0.0 <= heldout.acceptance_rate <= 1.0


def test_make_objective_refuses_draft_tokens_elsewhere():
    from colasearch.objectives import ObjectiveError

    with pytest.raises(ObjectiveError, match="draft_tokens"):
        make_objective("constrained", "acc", target_speedup=1.2, draft_tokens=4)


def _word_task(folder):
    """A multiple-choice task in the tiny tokenizer's words (w5, w6, ...), so that drafts disagree on it."""
    path = folder / "words.jsonl"
    with path.open("w") as out:
        for item in range(24):
            context = " ".join(f"w{5 + (item * 7 + k) % 80}" for k in range(8))
            out.write(json.dumps({"id": f"q{item}", "context": context,
                                  "choices": [f"w{10 + item % 50}", f"w{60 + item % 30}"], "label": item % 2}) + "\n")
    return path


def test_ray_workers_score_drafts_as_this_process_does(model, tmp_path, monkeypatch):
    """``open_executor`` hands each Ray worker a spec from which it builds its own evaluator. Here the workers
    run in this process (Ray itself is tested in tests/distributed), each built from the unpickled spec as an
    actor builds it; the speculative search through them must score drafts exactly as this process does."""
    import colasearch.distributed as distributed
    from colasearch.executor import InProcessExecutor
    from colasearch.loading import load_model
    from colasearch.engine.session import open_executor
    from colasearch.testing import make_tiny_tokenizer

    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    make_tiny_tokenizer().save_pretrained(folder)
    local_model, tokenizer = load_model(str(folder))
    task_spec = f"jsonl:{_word_task(tmp_path)}"
    task = load_task(task_spec)
    evaluator = Evaluator.from_options(local_model, tokenizer, task, search_size=8, heldout_size=6, **OPTIONS)
    context = RunContext(str(folder), local_model, tokenizer, task, evaluator, task_spec)
    pools = []

    class WorkersInThisProcess(InProcessExecutor):
        def __init__(self, spec, workers, **resources):
            pools.append((spec, workers, resources))
            super().__init__(pickle.loads(pickle.dumps(spec))())

    monkeypatch.setattr(distributed, "init_ray", lambda address=None: None)
    monkeypatch.setattr(distributed, "RayExecutor", WorkersInThisProcess)
    executor = open_executor(context, workers=2, threads=1)
    [(spec, workers, resources)] = pools
    assert workers == 2 and resources["cpus_per_worker"] == 1  # --threads reaches the workers' reservation
    assert executor.evaluator is not evaluator

    outcome, objective = search_with(context, "random", budget=4, target_speedup=1.25, seed=0,
                                     objective_name="speculative", executor=executor)
    assert outcome.evaluations == 4
    assert executor.evaluator.stats["result_cache_size"] >= 4  # the drafts were scored by the worker
    acceptances = set()
    for schedule, result in outcome.records:
        here = evaluator.evaluate(schedule)
        assert (result.quality, result.acceptance_rate, result.draft_tokens) == \
            (here.quality, here.acceptance_rate, 3)
        acceptances.add(here.acceptance_rate)
    assert len(acceptances) > 1  # the drafts differ, so a worker scoring them otherwise would show
    values = {schedule.key: objective.values(result)[0] for schedule, result in outcome.records}
    assert values[outcome.best.key] == max(values.values()) == outcome.best_value


@pytest.mark.integration
def test_run_with_the_speculative_objective_writes_a_draft(capsys, tmp_path, smollm):
    from colasearch.cli import main

    out = tmp_path / "draft.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--objective", "speculative", "--searcher", "random", "--budget", "1", "--baselines", "",
              "--search-size", "4", "--heldout-size", "4", "--speculative-prompts", "1", "--draft-tokens", "3",
              "--workers", "0", "--no-measure", "--out", str(out)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    assert "full model" in captured.out and "random (found)" in captured.out
    data = yaml.safe_load(out.read_text())
    speculative = data["provenance"]["speculative"]
    assert 0.0 <= speculative["acceptance_heldout"] <= 1.0 and speculative["draft_tokens"] == 3
    assert speculative["expected_speedup_heldout"] > 0 and data["metrics"]["speedup"]["ideal"] >= 1.25
    assert data["provenance"]["objective"] == "speculative"
