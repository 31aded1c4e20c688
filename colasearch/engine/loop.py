"""The run loop, written once for every searcher.

Every searcher gets the same mechanisms here, not in its own code:
- a **prior** from one cheap importance pass (``colasearch.priors``), computed once, stored with the
  study and counted against the budget;
- **projection** of every proposal onto the target cost (``SearchSpace.project``), so no evaluation goes
  to a schedule that cannot be chosen; the searcher is told the result under the schedule it asked for
  (for a tree search, that is a rollout completing its partial chain);
- **multi-fidelity racing** (``colasearch.engine.races``; its statistics in ``colasearch.engine.racing``): a
  candidate runs on nested item subsets and stops once it is clearly worse than the incumbent, item by item;
- a **protected start** (``BaseSearcher.start_schedule``): ``--init`` or ShortGPT's one-shot answer is
  evaluated first, on the full split, whatever the searcher proposes first; it is the first incumbent;
- a **confident final choice** (``colasearch.engine.choice``): among full-split results, the one whose paired
  lower bound over the first full-split result (the protected start, else the searcher's first proposal) is
  highest, so a schedule that is only luckier on the search items does not replace the start;
- a **confirmation** of that choice on items the search never used (``colasearch.engine.confirmation``):
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

from colasearch.evaluator.base import BaseEvaluator
from colasearch.executor import Executor
from colasearch.priors import Prior, compute_prior
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.engine.choice import ConfidentChoice
from colasearch.engine.confirmation import Confirmation, ConfirmationStep
from colasearch.engine.races import Race, Races
from colasearch.engine.racing import RacingPolicy, paired_estimate, racing_metric
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

    def ship(self, schedule: Schedule, result: EvalResult, objective) -> None:
        """Make ``schedule`` the run's answer."""
        self.best, self.best_result, self.best_value = schedule, result, objective.scalar(result)


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


class _ItemBudget:
    """The run's item-evaluations: what is spent (kept on the outcome and shown on the bar) and what the search
    may spend: all of it, less the confirmation's reserve once there is a contender to confirm (so a search
    whose start no candidate beats spends the whole budget searching)."""

    def __init__(self, outcome: SearchOutcome, total: int, reserve: int, has_contender, show):
        self.outcome = outcome
        self.total = total
        self.reserve = reserve
        self._has_contender = has_contender
        self._show = show

    def spend(self, items: int) -> None:
        self.outcome.items_spent += items
        self._show()

    @property
    def search_limit(self) -> int:
        if not self.reserve:
            return self.total
        return self.total - self.reserve if self._has_contender() else self.total

    @property
    def left(self) -> int:
        return self.total - self.outcome.items_spent


def run_search(searcher: BaseSearcher, executor: Executor, objective, budget: int, store=None,
               evaluator: BaseEvaluator | None = None, progress: bool = False, window: int = 1,
               max_idle_rounds: int = 100, max_free_tells: int = 1000, racing: RacingPolicy | None = None,
               project: bool = True) -> SearchOutcome:
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
    started = time.perf_counter()
    run = _Run(searcher, executor, objective, budget, store, evaluator, racing or RacingPolicy(), project, progress)
    outcome = run.outcome
    try:
        run.prepare()   # the prior and the searcher's own preparation, paid from the budget
        run.start()     # the protected start, on the full split, before any proposal
        idle = free_tells = 0
        while run.searching():
            run.ask(window)   # proposals, projected onto the target, each racing from its first level
            if run.next_is_done():
                race = run.tell_next()   # told to the searcher and recorded, in proposal order
                # A searcher that only re-proposes what is already known (a small space, every schedule on
                # the target seen) would never spend its budget: stop after a long run of free answers.
                free_tells = free_tells + 1 if race.spent == 0 else 0
                if free_tells > max_free_tells:
                    break
                idle = 0
            elif executor.pending():
                run.races.finished(*executor.next_finished())   # an evaluation came back: its races go on
                idle = 0
            elif searcher.finished and not run.outstanding:
                break
            else:
                idle += 1
                if idle > max_idle_rounds:
                    break
        run.choose_and_confirm()   # the confident choice, confirmed on items the search never used
    finally:
        run.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


class _Run:
    """One search's state between the steps of :func:`run_search`."""

    def __init__(self, searcher: BaseSearcher, executor: Executor, objective, budget: int, store,
                 evaluator: BaseEvaluator | None, policy: RacingPolicy, project: bool, progress: bool):
        self.searcher = searcher
        self.executor = executor
        self.objective = objective
        self.store = store
        self.evaluator = evaluator
        self.project = project
        self.prior: Prior | None = None
        self.incumbent: EvalResult | None = None   # the best feasible full-split result so far
        self.outstanding: deque[Race] = deque()    # proposals in proposal order, told when the first is done
        self._recorded: set[tuple] = set()
        levels = tuple(evaluator.levels.get("search", ())) if evaluator is not None else ()
        self.full_items = levels[-1] if levels else None
        per_item = evaluator is not None and evaluator.per_item
        metric = racing_metric(objective) if policy.enabled and per_item else None
        sign = 1.0 if metric is None or objective.directions[0] == "maximize" else -1.0
        self.metric, self.sign = metric, sign
        self.outcome = SearchOutcome(items_per_evaluation=self.full_items or 1)
        item_budget = budget * self.outcome.items_per_evaluation
        confirming = metric is not None and policy.choice_z > 0
        self.choice = ConfidentChoice(objective, metric, sign, policy) if confirming else None
        splits = evaluator.splits if evaluator is not None else None
        confirm_items = len(splits.confirm) if confirming and splits is not None else 0
        self.confirmation = ConfirmationStep(policy.confirm, policy.alpha, item_budget, confirm_items, store)
        self.bar = _Progress(budget, searcher.name, progress)
        self.budget = _ItemBudget(self.outcome, item_budget, self.confirmation.reserve,
                                  lambda: self.choice.has_contender(self.outcome.records), self._show)
        # Only the full split where the objective cannot race.
        self.races = Races(executor, objective, levels if metric is not None else levels[-1:], metric, sign, policy.z,
                           self.budget, self.outcome, store, self.full_items)

    def _show(self) -> None:
        self.bar.update(self.outcome.full_equivalents, len(self.outcome.records), self.outcome.best_value)

    def close(self) -> None:
        self.bar.close()

    def prepare(self) -> None:
        """The prior (baselines are the published one-shot methods: they compute what they need themselves,
        unprojected), then the searcher's own preparation; both paid from the budget where evaluations are
        counted in items (a stand-in evaluator without fidelity levels counts whole evaluations)."""
        searcher = self.searcher
        self.prior = None if searcher.is_baseline else _prior(searcher, self.evaluator, self.store)
        searcher.prior = self.prior
        if self.prior is not None and self.full_items is not None:
            self._prepared(self.prior.cost)
        searcher.prepare(self.evaluator)
        self._prepared(searcher.prepare_cost if self.full_items is not None else 0)

    def _prepared(self, items: int) -> None:
        self.outcome.prior_items += items
        self.budget.spend(items)

    def start(self) -> None:
        """The protected start (``BaseSearcher.start_schedule``), raced straight on the full split. It is what the
        user would otherwise ship, so it is protected as it is: projected only where it misses the target, never
        made slower by restoring units (in a sub-block space that turned ShortGPT's answer on ARC-Easy at 1.25x
        into another schedule, one attention block more)."""
        start = None if self.searcher.is_baseline else self.searcher.start_schedule()
        if start is None:
            return
        space = self.searcher.space
        missing = self.project and not space.meets_target(start)
        self.outcome.start = _projected(space, start, self.prior) if missing else start
        self._race(Race(None, self.outcome.start, None, self.races.full_level))

    def searching(self) -> bool:
        """Budget left, races to finish, or nothing recorded yet: the first proposal always runs, so a baseline
        whose preparation ate the budget is still scored."""
        outcome = self.outcome
        return outcome.items_spent < self.budget.search_limit or bool(self.outstanding) or not outcome.records

    def ask(self, window: int) -> None:
        """Ask for as many proposals as the window has room for and the budget can pay, and start their races."""
        outcome, searcher, races = self.outcome, self.searcher, self.races
        committed = sum(races.items_at(race.level) or 1 for race in self.outstanding if not race.done)
        room = window - len(self.outstanding)
        if outcome.records and outcome.items_spent + committed >= self.budget.search_limit:
            room = 0
        asked = searcher.ask(room) if room > 0 and not searcher.finished else []
        for schedule in asked:
            # The start proposed again (evolution and Optuna begin from it) is taken as it is, like the start
            # itself, so the searcher is told the start's own result for free.
            as_given = searcher.is_baseline or (outcome.start is not None and schedule.key == outcome.start.key)
            target = _projected(searcher.space, schedule, self.prior) if self.project and not as_given else schedule
            # A schedule already scored on the full split (the start, proposed again) is not raced anew.
            known = self.incumbent is None or races.known_in_full(target)
            self._race(Race(schedule, target, self.incumbent, races.full_level if known else 0))

    def _race(self, race: Race) -> None:
        self.outstanding.append(race)
        self.races.run(race)

    def next_is_done(self) -> bool:
        return bool(self.outstanding) and self.outstanding[0].done

    def tell_next(self) -> Race:
        """Tell the searcher the oldest proposal's result (a race stopped on a subset: its full-split estimate),
        record it once, and keep the best full-split result."""
        race = self.outstanding.popleft()
        result = race.result
        full = self.races.reached_full(race)
        told = result if full or race.incumbent is None else paired_estimate(result, race.incumbent)
        record = self.races.key(race.schedule, result)
        if record not in self._recorded:
            self._recorded.add(record)
            self.outcome.records.append((race.schedule, told))
        if full:
            value = self.objective.scalar(result)
            if value > self.outcome.best_value or self.outcome.best is None:
                self.outcome.best, self.outcome.best_result, self.outcome.best_value = race.schedule, result, value
                if self.objective.feasible(result):
                    self.incumbent = result
        if race.asked is not None:
            self.searcher.tell(race.asked, told)
        self._show()
        return race

    def choose_and_confirm(self) -> None:
        """Replace the highest full-split value by the confident choice, and confirm that choice where the
        budget left pays for it (``colasearch.engine.confirmation``)."""
        if self.choice is None:
            return
        outcome = self.outcome
        highest = outcome.best
        anchor, ranked = self.choice.choose(outcome)
        count, items = self.confirmation.plan(self.budget.left, len(ranked))
        if count:
            checks, chosen = self.confirmation.run(anchor, ranked[:count], items, self.executor, self.metric,
                                                   self.sign, self._confirmed, self.races.finished)
            outcome.confirmations, outcome.confirm_items = checks, items
            outcome.ship(*(chosen or anchor), self.objective)
        if highest is not None and outcome.best is not None:
            outcome.highest = highest if highest.key != outcome.best.key else None

    def _confirmed(self, reused: bool, items: int) -> None:
        if reused:
            self.outcome.reused += 1
        else:
            self.outcome.computed += 1
        self.budget.spend(items)


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
