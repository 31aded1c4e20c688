"""The run loop, written once for every searcher.

Every searcher gets the same mechanisms here, not in its own code:
- a **prior** from one cheap importance pass (``colasearch.priors``), computed once, stored with the
  study and counted against the budget;
- **projection** of every proposal onto the target cost (``SearchSpace.project``), so no evaluation goes
  to a schedule that cannot be chosen; the searcher is told the result under the schedule it asked for
  (for a tree search, that is a rollout completing its partial chain);
- **multi-fidelity racing** (``colasearch.search.racing``): a candidate runs on nested item subsets and
  stops once it is clearly worse than the incumbent, item by item;
- a **protected start** (``BaseSearcher.start_schedule``): ``--init`` or ShortGPT's one-shot answer is
  evaluated first, on the full split, whatever the searcher proposes first; it is the first incumbent;
- a **confident final choice**: among full-split results, the one whose paired lower bound over the
  first full-split result (the protected start, else the searcher's first proposal) is highest, so a
  schedule that is only luckier on the search items does not replace the start;
- a **confirmation** of that choice on items the search never used (``colasearch.search.confirmation``):
  the few candidates that clear the bound are scored again with the start on the confirmation split, and
  one replaces the start only where its lead holds there. Its cost is held back from the search's budget
  only while there is a candidate to confirm.

The budget is counted in item-evaluations: ``budget`` full-split evaluations' worth. A (schedule, item
count) pair is never evaluated twice: repeats are answered from the cache for free. On resume, the
stored records fill that cache and the searcher (same seed) is replayed through them, so it reaches
the same state without recomputing anything; each stored record is counted once, at the point where
the replay reaches it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from colasearch.executor import Executor
from colasearch.priors import Prior, compute_prior
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.search.confirmation import (CONFIRM_ATTRIBUTE, Confirmation, confirm, confirmation_plan,
                                            confirmation_reserve)
from colasearch.search.racing import (RacingPolicy, clearly_worse, contenders, paired_differences, paired_estimate,
                                      racing_metric)
from colasearch.searchers.base import BaseSearcher, SearcherError

PRIOR_ATTRIBUTE = "prior"


@dataclass
class SearchOutcome:
    records: list[tuple[Schedule, EvalResult]] = field(default_factory=list)
    best: Schedule | None = None
    best_result: EvalResult | None = None
    best_value: float = float("-inf")
    computed: int = 0   # evaluations run by this process
    reused: int = 0     # evaluations read back from storage
    seconds: float = 0.0
    items_spent: int = 0       # item-evaluations counted against the budget (prior and preparation included)
    items_per_evaluation: int = 1
    stopped: set[str] = field(default_factory=set)  # schedules a race stopped before the full split
    prior_items: int = 0       # item-forwards of the prior and the searcher's own preparation
    start: Schedule | None = None    # the protected start, evaluated before any proposal (None: there was none)
    highest: Schedule | None = None  # the highest full-split value, where the confident choice differs
    choice_z: float | None = None    # the lead, in paired standard errors, the final choice asked for
    confirmations: list[Confirmation] = field(default_factory=list)  # the contenders' leads on confirmation items
    confirm_items: int = 0           # confirmation items each confirmed schedule was scored on (0: none was)

    @property
    def stopped_early(self) -> int:
        """Candidates a race stopped before the full split; a schedule proposed twice counts once."""
        return len(self.stopped)

    @property
    def evaluations(self) -> int:
        """Candidates told to the searcher (each counted once, whatever fidelity it reached)."""
        return len(self.records)

    @property
    def full_equivalents(self) -> float:
        """The compute spent, in full-split evaluations."""
        return self.items_spent / max(1, self.items_per_evaluation)


class _Progress:
    """A rich progress bar over the budget (full-split evaluations), with the best objective so far."""

    def __init__(self, budget: int, label: str, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed:.1f}/{task.total} evals"),
                                 TextColumn("{task.fields[candidates]} candidates"),
                                 TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), transient=False)
        self.task = self.progress.add_task(label, total=budget, best="-", candidates=0)
        self.progress.start()

    def update(self, spent: float, candidates: int, best: float) -> None:
        if not self.enabled:
            return
        self.progress.update(self.task, completed=spent, candidates=candidates,
                             best=f"{best:.4f}" if best > float("-inf") else "-")

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


@dataclass
class _Race:
    """One proposal on its way through the fidelity levels."""

    asked: Schedule | None          # what the searcher proposed: it is told under this (None: the loop's start)
    schedule: Schedule              # what is evaluated and recorded (projected onto the target)
    incumbent: EvalResult | None    # the best full-split result when it was proposed (fixed, for determinism)
    level: int
    result: EvalResult | None = None
    done: bool = False


def _items_of(result: EvalResult, full: int | None) -> int | None:
    return result.items if result.items is not None else full


def run_search(searcher: BaseSearcher, executor: Executor, objective, budget: int, store=None, evaluator=None,
               progress: bool = False, window: int = 1, max_idle_rounds: int = 100, max_free_tells: int = 1000,
               racing: RacingPolicy | None = None, project: bool = True) -> SearchOutcome:
    """Ask, evaluate, tell until ``budget`` full-split evaluations' worth of items is spent.

    Up to ``window`` proposals are outstanding at once; the executor evaluates them concurrently and
    each finished evaluation is stored the moment it returns. The searcher, however, is told in
    proposal order and asked only at fixed points of that order, and each race compares with the
    incumbent of its proposal time, so what it sees does not depend on how many workers there are or
    which finishes first: one worker and eight give one result.
    """
    if budget < 1:
        raise SearcherError(f"budget must be at least 1 evaluation, got {budget}")
    if window < 1:
        raise SearcherError(f"the proposal window must be at least 1, got {window}")
    racing = racing or RacingPolicy()
    started = time.perf_counter()
    space = searcher.space
    levels = tuple(getattr(evaluator, "levels", {}).get("search", ())) if evaluator is not None else ()
    full_items = levels[-1] if levels else None
    metric = racing_metric(objective) if racing.enabled and getattr(evaluator, "per_item", False) else None
    raced_levels = levels if metric is not None else levels[-1:]
    sign = 1.0 if metric is None or objective.directions[0] == "maximize" else -1.0

    outcome = SearchOutcome(items_per_evaluation=full_items or 1)
    item_budget = budget * outcome.items_per_evaluation
    confirming = metric is not None and racing.choice_z > 0
    confirm_items = len(getattr(getattr(evaluator, "splits", None), "confirm", None) or ()) if confirming else 0
    reserve = confirmation_reserve(item_budget, confirm_items) if racing.confirm > 0 else 0
    contenders_seen = [-1, 0]   # full-split results when last counted, and contenders among them
    stored = {(schedule.key, _items_of(result, full_items)): result
              for schedule, result in (store.records() if store is not None else [])}
    cache: dict[tuple, EvalResult] = dict(stored)
    counted: set[tuple] = set()
    scored_items: dict[str, int] = {}   # per schedule, the most items already paid for (chunks are reused)
    in_flight: set[tuple] = set()
    recorded: set[tuple] = set()
    waiting: dict[tuple, list[_Race]] = {}
    outstanding: deque[_Race] = deque()
    incumbent: EvalResult | None = None
    bar = _Progress(budget, searcher.name, progress)

    def spend(items: int) -> None:
        outcome.items_spent += items
        bar.update(outcome.full_equivalents, len(outcome.records), outcome.best_value)

    # Baselines are the published one-shot methods: they compute what they need themselves, unprojected.
    prior = None if searcher.is_baseline else _prior(searcher, evaluator, store)
    searcher.prior = prior
    # Forwards over calibration items are item-evaluations only where evaluations are counted in items
    # (a stand-in evaluator without fidelity levels counts whole evaluations).
    if prior is not None and full_items is not None:
        outcome.prior_items += prior.cost
        spend(prior.cost)

    def level_items(level: int) -> int | None:
        return raced_levels[level] if raced_levels else None

    def search_limit() -> int:
        """The item budget left to the search: all of it, less the confirmation's reserve once there is a
        contender to confirm (so a search whose start no candidate beats spends the whole budget searching)."""
        if not reserve:
            return item_budget
        full = sum(1 for _, result in outcome.records if not result.estimated)
        if full != contenders_seen[0]:
            contenders_seen[:] = [full, len(_ranked_choice(outcome, objective, metric, sign, racing)[2])]
        return item_budget - reserve if contenders_seen[1] else item_budget

    def request(race: _Race) -> None:
        items = level_items(race.level)
        key = (race.schedule.key, items)
        if key in cache:
            receive(race, key)
        else:
            waiting.setdefault(key, []).append(race)
            if key not in in_flight:
                in_flight.add(key)
                executor.submit(race.schedule, items if metric is not None else None)

    def receive(race: _Race, key: tuple) -> None:
        if key not in counted:
            counted.add(key)
            if key in stored:
                outcome.reused += 1
            items = key[1] if key[1] is not None else 1
            paid = scored_items.get(race.schedule.key, 0)
            spend(max(0, items - paid))
            scored_items[race.schedule.key] = max(paid, items)
        race.result = cache[key]
        advance(race)

    def advance(race: _Race) -> None:
        last = race.level >= len(raced_levels) - 1
        if last or race.incumbent is None or not objective.feasible(race.result):
            race.done = True
            return
        next_items = level_items(race.level + 1)
        if clearly_worse(race.result, race.incumbent, metric, sign, racing.z) or \
                outcome.items_spent + next_items - (race.result.items or 0) > search_limit():
            outcome.stopped.add(race.schedule.key)
            race.done = True
            return
        race.level += 1
        request(race)

    def finished(schedule: Schedule, result: EvalResult) -> None:
        """A search-split evaluation came back: cache and store it, and hand it to the races waiting on it."""
        key = (schedule.key, _items_of(result, full_items))
        in_flight.discard(key)
        cache[key] = result
        outcome.computed += 1
        if store is not None:
            store.add(schedule, result, objective.values(result), objective.feasible(result))
        for race in waiting.pop(key, []):
            receive(race, key)

    def tell(race: _Race) -> None:
        nonlocal incumbent
        result = race.result
        full = race.level >= len(raced_levels) - 1
        told = result if full or race.incumbent is None else paired_estimate(result, race.incumbent)
        record = (race.schedule.key, _items_of(result, full_items))
        if record not in recorded:
            recorded.add(record)
            outcome.records.append((race.schedule, told))
        if full:
            value = objective.scalar(result)
            if value > outcome.best_value or outcome.best is None:
                outcome.best, outcome.best_result, outcome.best_value = race.schedule, result, value
                if objective.feasible(result):
                    incumbent = result
        if race.asked is not None:
            searcher.tell(race.asked, told)
        bar.update(outcome.full_equivalents, len(outcome.records), outcome.best_value)

    try:
        searcher.prepare(evaluator)
        preparation = searcher.prepare_cost if full_items is not None else 0
        outcome.prior_items += preparation
        spend(preparation)
        idle = free_tells = 0
        start = None if searcher.is_baseline else searcher.start_schedule()
        if start is not None:
            # The start is what the user would otherwise ship, so it is protected as it is: projected only
            # where it misses the target, never made slower by restoring units (in a sub-block space that
            # turned ShortGPT's answer on ARC-Easy at 1.25x into another schedule, one attention block more).
            missing = project and not space.meets_target(start)
            outcome.start = _projected(space, start, prior) if missing else start
            outstanding.append(_Race(None, outcome.start, None, len(raced_levels) - 1))
            request(outstanding[-1])
        # The first proposal always runs, so a baseline whose preparation ate the budget is still scored.
        while outcome.items_spent < search_limit() or outstanding or not outcome.records:
            committed = sum(level_items(race.level) or 1 for race in outstanding if not race.done)
            room = window - len(outstanding)
            if outcome.records and outcome.items_spent + committed >= search_limit():
                room = 0
            asked = searcher.ask(room) if room > 0 and not searcher.finished else []
            for schedule in asked:
                # The start proposed again (evolution and Optuna begin from it) is taken as it is, like the
                # start itself, so the searcher is told the start's own result for free.
                as_given = searcher.is_baseline or (outcome.start is not None and schedule.key == outcome.start.key)
                target = _projected(space, schedule, prior) if project and not as_given else schedule
                # A schedule already scored on the full split (the start, proposed again) is not raced anew.
                known = incumbent is None or (target.key, level_items(len(raced_levels) - 1)) in cache
                race = _Race(schedule, target, incumbent, len(raced_levels) - 1 if known else 0)
                outstanding.append(race)
                request(race)
            if outstanding and outstanding[0].done:
                spent_before = outcome.items_spent
                tell(outstanding.popleft())
                # A searcher that only re-proposes what is already known (a small space, every schedule on
                # the target seen) would never spend its budget: stop after a long run of free answers.
                free_tells = free_tells + 1 if outcome.items_spent == spent_before else 0
                if free_tells > max_free_tells:
                    break
                idle = 0
            elif executor.pending():
                finished(*executor.next_finished())
                idle = 0
            elif searcher.finished and not outstanding:
                break
            else:
                idle += 1
                if idle > max_idle_rounds:
                    break
        if confirming:
            highest = outcome.best
            anchor, ranked = _choose_confidently(outcome, objective, metric, sign, racing)
            count, items = confirmation_plan(item_budget - outcome.items_spent, min(racing.confirm, len(ranked)),
                                             confirm_items) if reserve else (0, 0)
            if count:
                _confirm_choice(outcome, anchor, ranked[:count], objective, metric, sign, executor, store, spend,
                                finished, items, racing.alpha)
            if highest is not None and outcome.best is not None:
                outcome.highest = highest if highest.key != outcome.best.key else None
    finally:
        bar.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _ranked_choice(outcome: SearchOutcome, objective, metric: str, sign: float, racing: RacingPolicy):
    """The anchor (the first full-split result: the protected start, else the first proposal), the bound, and the
    contenders: the full-split results whose paired lower bound over the anchor is above zero, best first. The
    bound grows with the number of candidates chosen among, and with how unlike each other they are
    (``RacingPolicy.choice_bound``)."""
    full = [(schedule, result) for schedule, result in outcome.records
            if not result.estimated and objective.feasible(result) and metric in (result.per_item or {})]
    if len(full) < 2:
        return (full[0] if full else None), None, []
    start = full[0][1]
    items = len(start.per_item[metric])
    bound = racing.choice_bound(  # candidates on the start's items only: no paired comparison else
        [paired_differences(result, start, metric, sign) for _, result in full[1:]
         if len(result.per_item[metric]) == items])
    on_start_items = [entry for entry in full if len(entry[1].per_item[metric]) == items]
    return full[0], bound, contenders(on_start_items, start, metric, sign, bound)


def _choose_confidently(outcome: SearchOutcome, objective, metric: str, sign: float, racing: RacingPolicy):
    """Replace the highest full-split value by the confident choice: the contender with the best lower bound
    over the anchor, else the anchor (see ``racing.confident_choice``). Returns the anchor and the contenders."""
    anchor, bound, ranked = _ranked_choice(outcome, objective, metric, sign, racing)
    if bound is None:
        return anchor, []
    outcome.choice_z = bound
    highest = outcome.best
    _ship(outcome, *(ranked[0] if ranked else anchor), objective)
    if outcome.best.key != highest.key:
        outcome.highest = highest
    return anchor, ranked


def _ship(outcome: SearchOutcome, schedule: Schedule, result: EvalResult, objective) -> None:
    outcome.best, outcome.best_result, outcome.best_value = schedule, result, objective.scalar(result)


def _confirm_choice(outcome: SearchOutcome, anchor: tuple, ranked: list, objective, metric: str, sign: float,
                    executor: Executor, store, spend, finished, items: int, alpha: float) -> None:
    """Score the anchor and the ``ranked`` contenders on the first ``items`` confirmation items (read back from the
    study where a resumed run has them), and ship the contender whose lead holds there, else the anchor."""
    saved = dict((store.attribute(CONFIRM_ATTRIBUTE) if store is not None else None) or {})
    on_confirm: dict[str, EvalResult] = {}
    missing = []
    for schedule, _ in [anchor, *ranked]:
        known = EvalResult.from_dict(saved[schedule.key]) if schedule.key in saved else None
        if known is not None and known.items == items:
            on_confirm[schedule.key] = known
            outcome.reused += 1
            spend(items)
        elif schedule.key not in missing:
            missing.append(schedule.key)
            executor.submit(schedule, items, "confirm")
    while missing:
        schedule, result = executor.next_finished()
        if result.split != "confirm":   # a search evaluation still in flight when the search stopped
            finished(schedule, result)
            continue
        on_confirm[schedule.key] = result
        missing.remove(schedule.key)
        outcome.computed += 1
        spend(items)
        if store is not None:   # kept with the study, not as a trial: trials are search-split results only
            saved[schedule.key] = result.to_dict()
            store.set_attribute(CONFIRM_ATTRIBUTE, saved)
    checks, chosen = confirm(ranked, on_confirm, on_confirm[anchor[0].key], metric, sign, alpha)
    outcome.confirmations, outcome.confirm_items = checks, items
    _ship(outcome, *(chosen or anchor), objective)


def _projected(space, schedule: Schedule, prior: Prior | None) -> Schedule:
    if schedule.experts is not None:
        return schedule  # expert thresholds are not layer units: their cost is measured, not projected
    chain = space.project(tuple(schedule.layers), prior)
    return schedule if chain == tuple(schedule.layers) else space.schedule(chain)


def _prior(searcher: BaseSearcher, evaluator, store) -> Prior | None:
    """The run's prior: read back from the study on resume, else computed once and stored."""
    stored = store.attribute(PRIOR_ATTRIBUTE) if store is not None else None
    if stored is not None:
        return Prior.from_dict(stored)
    if evaluator is None:
        return None
    prior = compute_prior(evaluator, searcher.space)
    if prior is not None and store is not None:
        store.set_attribute(PRIOR_ATTRIBUTE, prior.to_dict())
    return prior
