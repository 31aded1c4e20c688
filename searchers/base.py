"""The searcher protocol (ask/tell, in the style of Optuna's samplers and Ray Tune's Searcher) and its registry
(:data:`SEARCHERS`: the built-ins and the ``colasearch.searchers`` entry points)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from colasearch.cost import CostModel
from colasearch.errors import ColasearchError
from colasearch.registry import Registry
from colasearch.results import EvalResult
from colasearch.schedule import LayerEntry, Schedule
from colasearch.target import Target

ENTRY_POINT_GROUP = "colasearch.searchers"

Unit = tuple[int, str]  # (layer, "all" | "attn" | "mlp"): the thing a keep/skip searcher switches off


class SearcherError(ColasearchError):
    """An unknown searcher, a bad option, or a target no schedule in the space can reach."""


class SearchSpace(BaseModel):
    """What schedules a searcher may propose, and the speed target they must reach."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    num_layers: int = Field(ge=1)
    cost_model: CostModel
    target_speedup: float = Field(default=1.0, ge=1.0)
    sub_blocks: bool = False
    repeats: bool = False
    keep_first: int = Field(default=1, ge=0)
    keep_last: int = Field(default=1, ge=0)
    min_length: int = Field(default=1, ge=1)
    max_length: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        if self.cost_model.num_layers != self.num_layers:
            raise ValueError(f"cost model has {self.cost_model.num_layers} layers, space has {self.num_layers}")
        if self.keep_first + self.keep_last > self.num_layers:
            raise ValueError("keep_first + keep_last exceeds the number of layers")
        if self.max_length is not None and self.max_length < self.min_length:
            raise ValueError("max_length is below min_length")
        return self

    @classmethod
    def for_model(cls, model, target_speedup: float = 1.0, **options) -> SearchSpace:
        cost_model = CostModel.from_model(model)
        return cls(num_layers=cost_model.num_layers, cost_model=cost_model, target_speedup=target_speedup, **options)

    # -- the target -------------------------------------------------------------------------------

    @property
    def target(self) -> Target:
        """The speed target; hand it to the objective, so that both answer "fast enough" alike."""
        return Target(self.target_speedup)

    def reaches(self, speedup: float) -> bool:
        return self.target.reaches(speedup)

    # -- the pieces a schedule is built from ---------------------------------------------------

    @cached_property
    def protected_layers(self) -> frozenset[int]:
        return frozenset(range(self.keep_first)) | frozenset(range(self.num_layers - self.keep_last, self.num_layers))

    @cached_property
    def units(self) -> tuple[Unit, ...]:
        """Skippable units in layer order: whole layers, or attention and MLP sub-blocks."""
        runs = ("attn", "mlp") if self.sub_blocks else ("all",)
        return tuple((layer, run) for layer in range(self.num_layers) if layer not in self.protected_layers
                     for run in runs)

    def unit_cost(self, unit: Unit) -> float:
        return self.cost_model.unit_share(*unit)

    @property
    def upper_length(self) -> int:
        return self.max_length if self.max_length is not None else self.num_layers * (2 if self.repeats else 1)

    # -- schedules -----------------------------------------------------------------------------

    def full_chain(self) -> tuple[LayerEntry, ...]:
        return tuple(LayerEntry(layer=layer) for layer in range(self.num_layers))

    def schedule(self, entries: Iterable[LayerEntry]) -> Schedule:
        return Schedule.from_layers(tuple(entries))

    def chain_skipping(self, skipped: Iterable[Unit], repeated: Iterable[int] = ()) -> tuple[LayerEntry, ...]:
        """The layer-order chain without ``skipped`` units; layers in ``repeated`` run twice in a row."""
        skipped = set(skipped)
        repeated = set(repeated)
        entries = []
        for layer in range(self.num_layers):
            attention = (layer, "attn") not in skipped and (layer, "all") not in skipped
            mlp = (layer, "mlp") not in skipped and (layer, "all") not in skipped
            if not (attention or mlp):
                continue
            run = "all" if attention and mlp else ("attn" if attention else "mlp")
            entries.extend([LayerEntry(layer=layer, run=run)] * (2 if layer in repeated else 1))
        return tuple(entries)

    def skips_until_target(self, order: Iterable[Unit]) -> list[Unit]:
        """Units of ``order`` skipped one by one until the target is met: one-shot pruning in that order."""
        skipped: list[Unit] = []
        for unit in order:
            if self.meets_target(self.chain_skipping(skipped)):
                break
            skipped.append(unit)
        return skipped

    def one_shot_starts(self, prior) -> list[frozenset[Unit]]:
        """One-shot pruning answers to start a search from, the baseline a user would otherwise run first.

        The run loop evaluates the first start before any proposal (``BaseSearcher.start_schedule``), and its
        final choice keeps it unless a candidate clearly beats it, so the first start must be ShortGPT's own
        answer: whole layers, least important first. In a sub-block space the per-unit order is a second
        start: importance alone is blind to cost and drops many cheap attention blocks first, which
        sometimes pays and often does not. Without a prior, the costliest units first.
        """
        if prior is None:
            costliest_first = sorted(self.units, key=lambda unit: (-self.unit_cost(unit), unit))
            return [frozenset(self.skips_until_target(costliest_first))]
        starts = []
        if self.sub_blocks:
            layers = sorted({layer for layer, _ in self.units}, key=lambda layer: (prior.of((layer, "all")), layer))
            starts.append(frozenset(self.skips_until_target(
                (layer, run) for layer in layers for run in ("attn", "mlp") if (layer, run) in self.units)))
        starts.append(frozenset(self.skips_until_target(prior.order)))
        return list(dict.fromkeys(starts))

    def schedule_skipping(self, skipped: Iterable[Unit], repeated: Iterable[int] = ()) -> Schedule | None:
        chain = self.chain_skipping(skipped, repeated)
        return self.schedule(chain) if chain else None

    def speedup(self, chain: tuple[LayerEntry, ...] | Schedule) -> float:
        schedule = chain if isinstance(chain, Schedule) else self.schedule(chain)
        return self.cost_model.ideal_speedup(schedule)

    def meets_target(self, chain) -> bool:
        return self.reaches(self.speedup(chain))

    def length_ok(self, chain: tuple[LayerEntry, ...]) -> bool:
        return self.min_length <= len(chain) <= self.upper_length

    def cost_fraction(self, chain) -> float:
        return 1.0 / self.speedup(chain)

    def shortfall(self, chain) -> float:
        """How far a chain's cost is above the target, as a fraction of the saving needed (0 = reached)."""
        needed = 1.0 - 1.0 / self.target_speedup
        if needed <= 0:
            return 0.0
        return max(0.0, self.cost_fraction(chain) - 1.0 / self.target_speedup) / needed

    # -- projection onto the target cost --------------------------------------------------------

    def project(self, chain: tuple[LayerEntry, ...], prior=None) -> tuple[LayerEntry, ...]:
        """The chain moved onto the target cost, so that no evaluation goes to a schedule that cannot be chosen.

        Too slow: the least important entries (per unit of cost saved) are dropped until the target is met;
        a repeat counts as its layer's importance, so a loop of an important layer can survive where a less
        important layer goes (of two copies, the later one goes first). Faster than needed: the most important
        dropped units come back while the target still holds (skipping past the target only costs quality),
        sub-blocks only where they complete a layer (:meth:`_restorable_units`).
        Without a prior every unit counts the same and cost alone decides. Order, repeats and sub-block
        entries the searcher chose are otherwise kept.
        """
        chain = list(chain)
        importance = prior.of if prior is not None else (lambda unit: 0.0)
        while not self.meets_target(tuple(chain)):
            position = self._cheapest_removal(chain, importance)
            if position is None:
                break
            entry = chain[position]
            if self.sub_blocks and entry.run == "all" and chain.count(entry) == 1:
                # Drop the less valuable sub-block first; the other may go in a later step.
                part = min(("attn", "mlp"), key=lambda run: self._value_per_cost((entry.layer, run), importance))
                chain[position] = LayerEntry(layer=entry.layer, run="mlp" if part == "attn" else "attn")
            else:
                del chain[position]
        for unit in sorted(self._restorable_units(chain), key=lambda unit: -self._value_per_cost(unit, importance)):
            candidate = self._with_unit(chain, unit)
            if self.meets_target(tuple(candidate)) and self.length_ok(tuple(candidate)):
                chain = candidate
        return tuple(chain)

    def _value_per_cost(self, unit: Unit, importance) -> float:
        return importance(unit) / max(self.unit_cost(unit), 1e-12)

    def _cheapest_removal(self, chain: list[LayerEntry], importance) -> int | None:
        """Index of the entry whose removal loses least importance per cost saved; later copies of a repeat first."""
        seen: set[LayerEntry] = set()
        best, best_key = None, None
        for position, entry in enumerate(chain):
            if entry.layer in self.protected_layers:
                continue
            repeat = entry in seen
            seen.add(entry)
            runs = ("attn", "mlp") if self.sub_blocks and entry.run == "all" and not repeat else (entry.run,)
            value = min(self._value_per_cost((entry.layer, run), importance) for run in runs)
            key = (value, -position)
            if best_key is None or key < best_key:
                best, best_key = position, key
        return best

    def _restorable_units(self, chain: list[LayerEntry]) -> list[Unit]:
        """What projection may bring back into a chain faster than needed: a dropped sub-block only beside its
        running sibling, so that it completes a layer, and a layer that is wholly dropped only whole.

        Per-unit importance is measured in the full model, where every attention block has its MLP beside it:
        a cheap attention block scores high per cost, yet alone inside a skipped span it is out of place
        (layer 16's attention restored alone cost 8 points of ARC-Easy accuracy at 1.25x). A lone sub-block
        the searcher chose itself is left alone; projection only declines to create one.
        """
        dropped = self._dropped_units(chain)
        if not self.sub_blocks:
            return dropped
        running = {entry.layer for entry in chain}
        beside_sibling = [unit for unit in dropped if unit[0] in running]
        whole = list(dict.fromkeys((layer, "all") for layer, _ in dropped if layer not in running))
        return beside_sibling + whole

    def _dropped_units(self, chain: list[LayerEntry]) -> list[Unit]:
        attention = {entry.layer for entry in chain if entry.runs_attention}
        mlp = {entry.layer for entry in chain if entry.runs_mlp}
        present = {"all": lambda layer: layer in attention or layer in mlp,
                   "attn": lambda layer: layer in attention, "mlp": lambda layer: layer in mlp}
        return [(layer, run) for layer, run in self.units if not present[run](layer)]

    @staticmethod
    def _with_unit(chain: list[LayerEntry], unit: Unit) -> list[LayerEntry]:
        """``chain`` with a dropped unit back: a lone sub-block entry of its layer becomes whole, else a new
        entry goes after the last entry of a lower layer (layer order where the chain keeps it)."""
        layer, run = unit
        for position, entry in enumerate(chain):
            if entry.layer == layer and entry.run != "all" and entry.run != run:
                return chain[:position] + [LayerEntry(layer=layer)] + chain[position + 1:]
        position = max((index + 1 for index, entry in enumerate(chain) if entry.layer < layer), default=0)
        return chain[:position] + [LayerEntry(layer=layer, run=run)] + chain[position:]

    def max_speedup(self) -> float:
        """The best ideal speedup the space allows, to refuse an impossible target up front."""
        shares = sorted((self.unit_cost(unit), unit) for unit in self.units)
        keep = max(self.min_length - len(self.protected_layers) * (2 if self.sub_blocks else 1), 0)
        removable = [unit for _, unit in shares[::-1]][: max(len(shares) - keep, 0)]
        chain = self.chain_skipping(removable)
        return self.speedup(chain) if chain else math.inf

    def check_target(self) -> None:
        best = self.max_speedup()
        if not self.reaches(best):
            raise SearcherError(
                f"target speedup {self.target_speedup:g} is impossible: skipping every allowed unit gives at most "
                f"{best:.3f}x (first {self.keep_first} and last {self.keep_last} layers are kept)"
            )


class BaseSearcher(ABC):
    """Proposes schedules with :meth:`ask`, learns from :meth:`tell`.

    The run loop owns the budget, caching and storage: a searcher never evaluates anything itself,
    and a schedule it proposes twice is answered from the cache without costing an evaluation.
    """

    name: ClassVar[str]
    #: Baselines that construct their schedule rather than search for it.
    is_baseline: ClassVar[bool] = False
    #: Set by the run loop before :meth:`prepare`: per-unit importance from one cheap pass (or None).
    prior = None
    #: Set by the run loop before :meth:`prepare`: schedules to start from (``--init``), proposed first.
    init_schedules: tuple[Schedule, ...] = ()
    #: Item-forwards :meth:`prepare` spent (calibration passes); the run loop counts them against the budget.
    prepare_cost: int = 0
    #: Oracle mode (analysis only): the searcher tracks each item's best score over every schedule it was told,
    #: which no single schedule can ship; the run reports :meth:`oracle_report` and writes no schedule.
    oracle: bool = False

    def __init__(self, space: SearchSpace, objective, seed: int = 0, **options: Any):
        if options:
            raise SearcherError(f"searcher {self.name!r} got unknown options: {', '.join(sorted(options))}")
        self.space = space
        self.objective = objective
        self.seed = seed

    def prepare(self, evaluator) -> None:
        """Called once before the first ask, with the evaluator (for calibration data); optional."""

    @abstractmethod
    def ask(self, n: int = 1) -> list[Schedule]:
        """Up to ``n`` candidates; an empty list while waiting for results or when done."""

    @abstractmethod
    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        """The search-split result of a schedule this searcher asked for."""

    @property
    def finished(self) -> bool:
        """True when the searcher has nothing more to propose."""
        return False

    def use_importance(self, importance) -> None:
        """Importance this searcher calibrated earlier in the same study (what :meth:`study_attributes` kept,
        read back on resume), so that it is not recomputed; a searcher that calibrates nothing ignores it."""

    def study_attributes(self) -> dict:
        """Values to keep with the study once the search ends (name -> JSON value), e.g. a calibration for
        :meth:`use_importance` on resume; none by default."""
        return {}

    def oracle_report(self) -> dict:
        """In :attr:`oracle` mode, the per-item oracle's quality: ``{"label", "items", "quality"}``."""
        raise SearcherError(f"searcher {self.name!r} has no oracle mode")

    def start_schedule(self) -> Schedule | None:
        """The schedule the run loop evaluates first, before any proposal: the reference the races and the
        final choice compare with (set :attr:`prior` and :attr:`init_schedules` first).

        It is the user's ``--init`` schedule, else ShortGPT's one-shot answer from the prior, so that a
        search returns something else only when it clearly beats what the user would otherwise run, whatever
        the searcher proposes first. Without either there is no answer to protect (``None``): the
        searcher's first proposal is the reference.
        """
        if self.init_schedules:
            return self.init_schedules[0]
        if self.prior is None:
            return None
        starts = self.space.one_shot_starts(self.prior)
        return self.space.schedule_skipping(starts[0]) if starts else None

    # -- helpers shared by searchers ------------------------------------------------------------

    def quality(self, result: EvalResult) -> float:
        """The objective's first value with its sign set so that higher is better, feasibility ignored."""
        value = self.objective.values(result)[0]
        return value if self.objective.directions[0] == "maximize" else -value


class ConstructedBaseline(BaseSearcher):
    """A baseline that builds one schedule (:meth:`schedule`), asks for it once, and is done when told."""

    is_baseline: ClassVar[bool] = True

    def __init__(self, space: SearchSpace, objective, seed: int = 0, **options: Any):
        super().__init__(space, objective, seed, **options)
        self._asked = False
        self._done = False

    @abstractmethod
    def schedule(self) -> Schedule:
        """The baseline's schedule for the space's target."""

    def ask(self, n: int = 1) -> list[Schedule]:
        if self._asked or n < 1:
            return []
        self._asked = True
        return [self.schedule()]

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        self._done = True

    @property
    def finished(self) -> bool:
        return self._done


# -- registry -------------------------------------------------------------------------------------

SEARCHERS: Registry[type[BaseSearcher]] = Registry("searcher", ENTRY_POINT_GROUP, {
    "mcts": "colasearch.searchers.mcts:MCTSSearcher",
    "optuna": "colasearch.searchers.optuna_search:OptunaSearcher",
    "rl": "colasearch.searchers.rl:RLSearcher",
    "frontier": "colasearch.searchers.frontier:FrontierSearcher",
    "evolution": "colasearch.searchers.evolution:EvolutionSearcher",
    "unified": "colasearch.searchers.unified:UnifiedSearcher",
    "greedy": "colasearch.searchers.greedy:GreedySearcher",
    "gromov": "colasearch.searchers.gromov:GromovSearcher",
    "random": "colasearch.searchers.random_search:RandomSearcher",
}, error=SearcherError)


def register_searcher(cls: type[BaseSearcher]) -> type[BaseSearcher]:
    """Class decorator: register a searcher under its ``name`` in this process."""
    return SEARCHERS.register(cls.name, cls)


def searcher_class(name: str) -> type[BaseSearcher]:
    return SEARCHERS.get(name)


def make_searcher(name: str, space: SearchSpace, objective, seed: int = 0,
                  **options: Any) -> BaseSearcher:
    # No budget: the run loop owns it (it stops asking), so a searcher that sized itself by it would differ
    # between a resumed run, racing and a plain one.
    return searcher_class(name)(space, objective, seed=seed, **options)
