"""The Evaluator: (model, schedule, task split) -> EvalResult, fast and never twice for one schedule."""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections import OrderedDict
from pathlib import Path
from time import perf_counter

import torch

from colasearch.cost import CostModel
from colasearch.devices import default_cache_bytes, model_device
from colasearch.errors import TaskError
from colasearch.evaluator.base import BaseEvaluator
from colasearch.evaluator.config import EvaluatorConfig
from colasearch.evaluator.forward import ChainRunner, PackedBatch, fast_path_supported
from colasearch.evaluator.prefix_cache import PrefixCache, entry_key, process_budget
from colasearch.evaluator.reference import plain_scores, reference_scores
from colasearch.evaluator.result_cache import ResultCache
from colasearch.model_identity import model_identity
from colasearch.results import EvalResult
from colasearch.runtime import scheduled
from colasearch.schedule import Schedule
from colasearch.tasks.base import ModelTask, PackedSequence, ScoringTask, SequenceScores, Task
from colasearch.tasks.splits import ALL_SPLITS, SPLITS, split_items

# One schedule may fill at most this share of the prefix cache, so a few lineages fit at once.
SCHEDULE_SHARE = 0.25
# Drafting prompts are cut to this many tokens: acceptance depends on the continuation, not on long contexts.
PROMPT_TOKENS = 64
# The smallest item count a multi-fidelity race decides on: below it, paired differences are mostly noise.
FIDELITY_MIN_ITEMS = 16
# Per-item scores of this many (schedule, chunk) pairs are kept, so a promoted candidate only runs its new items.
CHUNK_SCORES_KEPT = 256


def fidelity_levels(total: int, smallest: int = FIDELITY_MIN_ITEMS, factor: int = 2) -> tuple[int, ...]:
    """Nested item counts a candidate can be scored on: ``total``, halved while at least ``smallest``.

    The split is in a seeded hash order, so every level is a random subset of the next one.
    """
    levels = [total]
    while levels[0] // factor >= smallest:
        levels.insert(0, levels[0] // factor)
    return tuple(levels)


class Evaluator(BaseEvaluator):
    """Scores schedules on the search or held-out split of one task, for one model.

    Scoring tasks on pre-norm families run on the fast path (packed items, prefix cache of hidden
    states); other tasks run through the schedule-patched model. Either way each (schedule, split)
    is computed once: results are cached, and persisted when ``cache_path`` is given.

    Its settings are one :class:`~colasearch.evaluator.config.EvaluatorConfig` (``config``), the value every
    evaluator of a run and every Ray worker is built from. Its ``confirm_size`` items after the held-out ones
    form the ``confirm`` split, on which the run loop checks the final choice's lead
    (``colasearch.engine.confirmation``); 0, the default, gives none.
    """

    def __init__(self, model, tokenizer, task: Task, config: EvaluatorConfig | None = None, *,
                 cache_path: Path | None = None, measured_cost=None):
        """``config``: the splits and scoring options, the value a Ray worker receives as is (default:
        ``EvaluatorConfig()``). ``cache_path`` (a results file) and ``measured_cost`` (a timer already built)
        belong to this process, not to the settings."""
        config = EvaluatorConfig() if config is None else config
        if config.speculative_prompts < 0 or config.draft_tokens < 1 or config.draft_new_tokens < 1 \
                or config.expert_skip_items < 0:
            raise TaskError("speculative_prompts and expert_skip_items must be >= 0, draft_tokens and "
                            "draft_new_tokens >= 1")
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        task.bind(tokenizer)
        if isinstance(task, ModelTask):
            task.use_scorer(plain_scores)
        self.splits = split_items(task.items(), config.search_size, config.heldout_size, config.seed,
                                  config.confirm_size)
        self.levels = {split: fidelity_levels(len(self.splits[split])) for split in SPLITS}
        # The confirmation scores a few schedules once, on as many items as the budget left affords: any
        # multiple of the smallest level, so that little of it goes unused.
        confirm = len(self.splits.confirm)
        self.levels["confirm"] = (*range(FIDELITY_MIN_ITEMS, confirm, FIDELITY_MIN_ITEMS), confirm) if confirm else (0,)
        # KL to the full model at every scored token: a dense signal for any scoring task (MoDES, FinerCut,
        # EvoPress search on it), at the price of one extra head pass per scored position.
        self.with_reference = isinstance(task, ScoringTask) and \
            (task.needs_reference or config.dense_kl or config.context_kl)
        # Also at every token of the item's own text (EvoPress's calibration KL, on the task's text): many
        # more tokens per item than the scored ones, and no labels, so it is not fitted to the search items'
        # answers. Costs one more head pass per text token, for the schedule and for the full model.
        self.context_kl = self.with_reference and config.context_kl
        self.cost_model = CostModel.from_model(model)
        if config.measure_speed and measured_cost is None:
            # An option, not an object, so that a Ray worker times on its own device (--objective measured).
            from colasearch.objectives import MeasuredCost

            measured_cost = MeasuredCost(model, force=config.force)
        self.measured_cost = measured_cost
        # Shapes, a digest of the weights, dtype and device kind: a fine-tune or a quantization of the same shape
        # sharing one results file reads back none of the other's results.
        self.model_hash = model_identity(model)
        # The metric names are in the key, so results cached before a task gained a metric are not reused.
        metrics = ",".join(sorted(task.metric_directions))
        splits = f"{config.search_size}/{config.heldout_size}/{config.seed}"
        self.task_key = f"{task.name}:{task.config_key()}:{metrics}:{splits}"
        # What ``extra`` holds is part of the result, so it is part of the cache key (only when asked for,
        # so the keys of plain evaluations stay what they were).
        self.speculative = (config.speculative_prompts, config.draft_tokens, config.draft_new_tokens) \
            if config.speculative_prompts else None
        if self.speculative:
            self.task_key += "|speculative={}/{}/{}".format(*self.speculative)
        if self.with_reference and not task.needs_reference:
            self.task_key += "|kl"
        if self.context_kl:
            self.task_key += "|context_kl"
        if self.measured_cost is not None:  # a result without a timing must not stand in for one with it
            self.task_key += "|measured"
        self._expert_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.results = ResultCache(cache_path)
        # Sized against the model's device: 512 MB fixed gave 295 evictions in 30 evaluations of a 2048-wide model.
        # One bound for all the evaluators of this process on the device (colasearch.evaluator.prefix_cache).
        self.prefix_cache = PrefixCache(budget=process_budget(
            str(model_device(model)), None if config.prefix_cache_mb is None else config.prefix_cache_mb * 2**20,
            lambda: default_cache_bytes(model)))
        self.fast = isinstance(task, ScoringTask) and fast_path_supported(model)
        self.runner = ChainRunner(model) if self.fast else None
        self._packed: dict[str, list[PackedSequence]] = {}
        self._batches: dict[str, list[PackedBatch]] = {}
        self._references: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._chunk_scores: OrderedDict[tuple, list[SequenceScores]] = OrderedDict()
        self._counts = {"computed": 0, "result_cache_hits": 0, "entries_run": 0, "entries_reused": 0}

    @classmethod
    def from_options(cls, model, tokenizer, task: Task, *, cache_path: Path | None = None, measured_cost=None,
                     **options) -> Evaluator:
        """Built from :class:`~colasearch.evaluator.config.EvaluatorConfig`'s fields as keywords (tests, benches):
        ``Evaluator.from_options(model, tokenizer, task, search_size=8)``. A misspelt option fails here."""
        return cls(model, tokenizer, task, EvaluatorConfig(**options), cache_path=cache_path,
                   measured_cost=measured_cost)

    # -- public ---------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        return {**self._counts, "prefix_cache_hits": self.prefix_cache.hits,
                "prefix_cache_misses": self.prefix_cache.misses, "prefix_cache_evictions": self.prefix_cache.evictions,
                "prefix_cache_bytes": self.prefix_cache.bytes, "result_cache_size": len(self.results)}

    def result_key(self, schedule: Schedule | None, split: str, items: int | None = None) -> str:
        key = f"{self.model_hash}|{schedule_key(schedule)}|{self.task_key}|{split}"
        if split == "confirm":  # which items these are depends on the confirmation split's size too
            key += f"|confirm={len(self.splits.confirm)}"
        if schedule is not None and schedule.experts is not None:
            key += f"|expert_skip_items={self.config.expert_skip_items}"
        if items is not None and items < len(self.splits[split]):
            key += f"|items={items}"
        return key

    @property
    def per_item(self) -> bool:
        """Whether results carry per-item values (``EvalResult.per_item``), which multi-fidelity racing needs."""
        return isinstance(self.task, ScoringTask) and self.task.has_item_values and not self.speculative

    def level(self, split: str, items: int | None) -> int:
        """The fidelity level that covers ``items`` (all items when ``None``)."""
        levels = self.levels[split]
        if items is None or not self.per_item:
            return levels[-1]
        return next((level for level in levels if level >= items), levels[-1])

    def evaluate(self, schedule: Schedule | None, split: str = "search", items: int | None = None) -> EvalResult:
        """Quality of ``schedule`` on the first ``items`` items of ``split`` (rounded up to a fidelity level)."""
        self._check_split(split)
        if not self.splits[split]:
            raise TaskError(f"the {split} split of task {self.task.name!r} has no items")
        if schedule is not None:
            schedule.check_fits(self.model, force=self.config.force)
        count = self.level(split, items)
        key = self.result_key(schedule, split, count)
        cached = self.results.get(key)
        if cached is not None:
            self._counts["result_cache_hits"] += 1
            return cached
        start = perf_counter()
        quality, per_item = self._quality(schedule, split, count)
        measured = self.measured_cost.speedup(schedule) if self.measured_cost is not None else None
        skip_ratio = self._expert_skip_ratio(schedule)
        acceptance = self._acceptance(schedule, split) if self.speculative else {}
        result = EvalResult(schedule_key=schedule_key(schedule), task=self.task.name, split=split, quality=quality,
                            ideal_speedup=self.cost_model.ideal_speedup(schedule, skip_ratio),
                            measured_speedup=measured, seconds=perf_counter() - start, items=count,
                            per_item=per_item, expert_skip_ratio=skip_ratio, **acceptance)
        self._counts["computed"] += 1
        self.results.put(key, result)
        return result

    def evaluate_many(self, schedules: list[Schedule | None], split: str = "search",
                      items: list[int | None] | None = None) -> list[EvalResult]:
        """Evaluated in chain order, so schedules sharing a prefix run back to back and reuse it."""
        items = items or [None] * len(schedules)
        order = sorted(range(len(schedules)), key=lambda i: _chain_sort_key(schedules[i]))
        results: dict[int, EvalResult] = {}
        for index in order:
            results[index] = self.evaluate(schedules[index], split, items[index])
        return [results[index] for index in range(len(schedules))]

    def split_items(self, split: str):
        self._check_split(split)
        return self.splits[split]

    def calibration_batch(self, max_items: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Search-split token sequences, left-padded, for importance scores; never held-out items."""
        items = self.splits.search[:max_items]
        if isinstance(self.task, ScoringTask):
            sequences = []
            for sequence in self.task.pack(items, self.tokenizer):
                segment = min(sequence.segment_of_target(k) for k in range(len(sequence.targets))) \
                    if sequence.targets else 0
                sequences.append(sequence.unpacked(segment)[0])
        else:
            sequences = self._prompt_tokens(items, f"task {self.task.name!r} has no text to calibrate on; use a "
                                                   "jsonl, text or built-in task")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(tokens) for tokens in sequences)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(t)) + list(t) for t in sequences], device=device)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in sequences], device=device)
        return input_ids, mask

    def speculative_prompts(self, split: str, count: int) -> list[list[int]]:
        """Up to ``count`` prompts of the split to draft on: multiple-choice contexts, generation prompts,
        or the first half of text windows (at most ``PROMPT_TOKENS`` tokens, the end of a context kept)."""
        items = self.split_items(split)[:count]
        if isinstance(self.task, ScoringTask):
            prompts = []
            for sequence in self.task.pack(items, self.tokenizer):
                prefix = [token for token, segment in zip(sequence.tokens, sequence.segments) if segment == 0]
                if sequence.target_segments is None:  # a text window: the whole window is one segment
                    prefix = prefix[:max(1, min(len(prefix) // 2, PROMPT_TOKENS))]
                prompts.append(prefix[-PROMPT_TOKENS:])
        else:
            prompts = [tokens[-PROMPT_TOKENS:] for tokens in self._prompt_tokens(
                items, f"task {self.task.name!r} has no prompts to draft on; use a jsonl, text or built-in task")]
        return [prompt for prompt in prompts if prompt]

    # -- internals ------------------------------------------------------------------------------

    def _prompt_tokens(self, items, without: str) -> list[list[int]]:
        """The tokens of each item's prompt text (``Task.item_prompt``); a TaskError saying ``without`` for a
        task that has none."""
        texts = [self.task.item_prompt(self.tokenizer, item) for item in items]
        if any(text is None for text in texts):
            raise TaskError(without)
        return [self.tokenizer(text).input_ids for text in texts]

    def _acceptance(self, schedule: Schedule | None, split: str) -> dict:
        """The draft/verify acceptance of ``schedule`` on the split's prompts (the full model drafts for itself), as
        ``EvalResult`` fields."""
        from colasearch.speculative import acceptance_extra

        count, draft_tokens, new_tokens = self.speculative
        draft = schedule if schedule is not None else Schedule.identity(self.model)
        prompts = self.speculative_prompts(split, count)
        if not prompts:
            raise TaskError(f"split {split!r} of task {self.task.name!r} has no prompt to draft on")
        with torch.no_grad():
            return acceptance_extra(self.model, draft, prompts, k=draft_tokens, max_new_tokens=new_tokens,
                                    force=self.config.force)

    def _expert_skip_ratio(self, schedule: Schedule | None) -> float | None:
        """The measured share of routed expert work a schedule's ``experts`` section skips, on the
        calibration batch; None without such a section (or when measuring is off)."""
        if schedule is None or schedule.experts is None or not self.config.expert_skip_items:
            return None
        from colasearch.moe import expert_skip_ratio

        if self._expert_batch is None:
            self._expert_batch = self.calibration_batch(max_items=self.config.expert_skip_items)
        return expert_skip_ratio(self.model, schedule, *self._expert_batch)


    def _check_split(self, split: str) -> None:
        if split not in ALL_SPLITS:
            raise TaskError(f"unknown split {split!r} (expected one of {', '.join(ALL_SPLITS)})")

    def _quality(self, schedule: Schedule | None, split: str, count: int) -> tuple[dict[str, float], dict | None]:
        """Metrics on the first ``count`` items of the split, and per-item values where the task has them."""
        quality, per_item = self._task_quality(schedule, split, count)
        if not self.task.compares_with_full:
            return quality, per_item
        # Tasks that weigh sub-tasks against each other (composite) compare with the full model on the same items.
        full = quality if schedule is None else self.evaluate(None, split, count).quality
        return self.task.relative_to_full(quality, full), per_item

    def _with_schedule(self, schedule: Schedule | None, work):
        with scheduled(self.model, schedule, force=self.config.force):
            return work(self.model, self.tokenizer)

    def _task_quality(self, schedule: Schedule | None, split: str, count: int) -> tuple[dict[str, float], dict | None]:
        items = self.splits[split][:count]
        if isinstance(self.task, ModelTask):
            with scheduled(self.model, schedule, force=self.config.force):
                return self.task.run(self.model, self.tokenizer, items), None
        packed = self.packed(split)[:count]
        if self.fast:
            scores = self._fast_scores(schedule, split, count)
        else:
            scores = reference_scores(self.model, schedule, packed, with_reference=self.with_reference,
                                      force=self.config.force, context_kl=self.context_kl)
        metrics = self.task.metrics_with_model(items, packed, scores, functools.partial(self._with_schedule, schedule))
        quality = {name: float(value) for name, value in metrics.items()}
        per_item = None
        if self.per_item:
            per_item = {name: [round(float(value), 6) for value in values]
                        for name, values in self.task.item_values(items, packed, scores).items()}
        return quality, per_item

    def packed(self, split: str) -> list[PackedSequence]:
        if split not in self._packed:
            self._packed[split] = self.task.pack(self.splits[split], self.tokenizer)
        return self._packed[split]

    def chunks(self, split: str) -> list[tuple[int, int]]:
        """Item ranges between consecutive fidelity levels: scoring one more level runs only its new chunk."""
        levels = self.levels[split]
        return list(zip((0,) + levels[:-1], levels))

    def batches(self, split: str, chunk: int | None = None) -> list[PackedBatch]:
        """Fixed groups of similar length (so little padding) within each chunk, built once; prefix keys
        refer to them. Without ``chunk``, the batches of every chunk."""
        if split not in self._batches:
            packed = self.packed(split)
            self._batches[split] = []
            for number, (start, stop) in enumerate(self.chunks(split)):
                self._batches[split].append(self._group(split, number, packed, range(start, stop)))
        if chunk is None:
            return [batch for batches in self._batches[split] for batch in batches]
        return self._batches[split][chunk]

    def _group(self, split: str, chunk: int, packed: list[PackedSequence], indices) -> list[PackedBatch]:
        order = sorted(indices, key=lambda i: len(packed[i]))
        groups, current, width = [], [], 0
        for index in order:
            width_if_added = max(width, len(packed[index]))
            if current and width_if_added * (len(current) + 1) > self.config.batch_tokens:
                groups.append(current)
                current, width_if_added = [], len(packed[index])
            current.append(index)
            width = width_if_added
        if current:
            groups.append(current)
        batches = [self.runner.batch((split, chunk, number), [packed[i] for i in group])
                   for number, group in enumerate(groups)]
        for batch, group in zip(batches, groups):
            batch.order = group
        return batches

    def _fast_scores(self, schedule: Schedule | None, split: str, count: int | None = None) -> list[SequenceScores]:
        """Scores of the first ``count`` items (all by default), chunk by chunk; chunks already scored for this
        schedule are reused, so racing a candidate through the levels costs what one full evaluation costs."""
        count = len(self.packed(split)) if count is None else count
        chain = self.runner.chain(schedule)
        keys = entry_key(chain)
        experts = schedule.experts if schedule is not None else None
        if experts is not None:
            # Gated experts change every state after the first sparse block: such prefixes are cached apart.
            tag = json.dumps(experts.model_dump(mode="json"), sort_keys=True)
            keys = tuple((*key, tag) for key in keys)
        entries = self.runner.entries(chain)
        scores: list[SequenceScores] = []
        for number, (start, stop) in enumerate(self.chunks(split)):
            if start >= count:
                break
            cache_key = (schedule_key(schedule), split, number)
            if cache_key not in self._chunk_scores:
                self._chunk_scores[cache_key] = self._score_chunk(split, number, start, stop, keys, entries, experts)
                while len(self._chunk_scores) > CHUNK_SCORES_KEPT:
                    self._chunk_scores.popitem(last=False)
            self._chunk_scores.move_to_end(cache_key)
            scores.extend(self._chunk_scores[cache_key])
        return scores[:count]

    def _score_chunk(self, split, chunk, start, stop, keys, entries, experts) -> list[SequenceScores]:
        scores: list[SequenceScores | None] = [None] * (stop - start)
        batches = self.batches(split, chunk)
        # The full model's reference is computed before any expert gate goes in.
        references = [self._reference_states(batch) if self.with_reference else None for batch in batches]
        with _expert_gating(self.model, experts):
            for batch, reference in zip(batches, references):
                hidden = self._run_chain(batch, keys, entries)
                states, context = reference if reference is not None else (None, None)
                batch_scores = self.runner.score(self.runner.final_states(hidden, batch), batch, states)
                if context is not None:
                    own = self.runner.final_states(hidden, batch, context=True)
                    for score, values in zip(batch_scores, self.runner.context_kl(own, context, batch)):
                        score.context_kl = values
                for index, score in zip(batch.order, batch_scores):
                    scores[index - start] = score
        return scores

    def _run_chain(self, batch: PackedBatch, keys, entries) -> torch.Tensor:
        start, hidden = self.prefix_cache.longest(batch.key, keys)
        if hidden is None:
            hidden = self.runner.embed(batch)
        self._counts["entries_reused"] += start
        stride = self._checkpoint_stride(batch, len(entries))
        for position in range(start, len(entries)):
            hidden = self.runner.run(hidden, entries[position], batch)
            self._counts["entries_run"] += 1
            done = position + 1
            if done % stride == 0 or done == len(entries):
                self.prefix_cache.put(batch.key, keys[:done], hidden)
        return hidden

    def _checkpoint_stride(self, batch: PackedBatch, length: int) -> int:
        state_bytes = batch.tokens * self.runner.config.hidden_size * self.runner.dtype.itemsize
        per_batch = max(1, int(self.prefix_cache.max_bytes * SCHEDULE_SHARE / len(self.batches(batch.key[0]))))
        return max(1, math.ceil(length * state_bytes / per_batch))

    def _reference_states(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The full model's normed states at the scored positions (and at the context rows, with
        ``context_kl``); computed once per batch."""
        key = batch.key
        if key not in self._references:
            chain = self.runner.chain(None)
            hidden = self.runner.embed(batch)
            for entry in self.runner.entries(chain):
                hidden = self.runner.run(hidden, entry, batch)
            context = self.runner.final_states(hidden, batch, context=True) if self.context_kl else None
            self._references[key] = (self.runner.final_states(hidden, batch), context)
        return self._references[key]


@contextlib.contextmanager
def _expert_gating(model, section):
    """The fast path runs layers itself, so a schedule's ``experts`` section is installed around it."""
    if section is None:
        yield
        return
    from colasearch.moe import apply_expert_skipping, remove_expert_skipping

    apply_expert_skipping(model, section)
    try:
        yield
    finally:
        remove_expert_skipping(model)


def schedule_key(schedule: Schedule | None) -> str:
    return "full" if schedule is None else schedule.key


def _chain_sort_key(schedule: Schedule | None):
    return () if schedule is None else entry_key(schedule.layers)
