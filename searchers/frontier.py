"""MoDES-style frontier walk over monotone knobs: O(grid) evaluations instead of O(grid^2).

A knob has levels 0..n; raising it never makes the schedule more expensive. For dense models the
knobs are "how many attention sub-blocks are skipped" and "how many MLP sub-blocks are skipped",
each following an importance order measured once. The walk starts at the full model and at each
step raises the knob (by a stride sized so that about ``walk_steps`` moves reach the target) that
loses the least quality per unit of cost saved, until the target is met;
leftover budget then tries the other points on the target's iso-cost line, nearest first.
A subclass adds knobs by overriding :meth:`make_knobs` and :meth:`chain_for`.

With ``experts=True`` (MoE models) the knobs are the expert-skipping thresholds instead, one per
token group (MoDES): the layer chain stays whole, the importance vector is calibrated once (or
given), and for a target skip ratio (given, or the one the speed target needs) the walk in
:mod:`colasearch.searchers.thresholds` bisects one group's threshold grid or walks two groups'
staircase. Every result carries the skip ratio the evaluator measured; the best point reaching the
target (by the objective: task quality up, or KL down) is :attr:`expert_best`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from colasearch.importance import unit_scores
from colasearch.priors import DEFAULT_CALIBRATION_ITEMS
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError
from colasearch.searchers.thresholds import WALKS, reaches

Levels = tuple[int, ...]


@dataclass(frozen=True)
class Knob:
    name: str
    steps: tuple  # level k applies steps[:k]

    @property
    def size(self) -> int:
        return len(self.steps)


class FrontierSearcher(BaseSearcher):
    name = "frontier"

    def __init__(self, space, objective, seed: int = 0, *, score: str = "block_influence",
                 calibration_items: int = DEFAULT_CALIBRATION_ITEMS, orders: dict | None = None, walk_steps: int = 3,
                 experts: bool = False, expert_skip_ratio: float | None = None, expert_grid: int = 64,
                 expert_tolerance: float = 0.02, importance: tuple | list | None = None,
                 expert_groups: tuple | list | str = ("text",), renormalize: bool = True, **options):
        super().__init__(space, objective, seed, **options)
        self.experts = experts
        if experts:
            self._init_experts(expert_skip_ratio, expert_grid, expert_tolerance, importance, expert_groups,
                               renormalize)
        self.walk_steps = max(1, walk_steps)
        self.stride = 1
        self.score = score
        self.calibration_items = calibration_items
        self.knobs: list[Knob] | None = self.make_knobs(orders) if orders is not None else None
        self.current: Levels | None = None
        self.results: dict[Levels, float] = {}
        self._pending: dict[str, Levels] = {}
        self._queue: list[Levels] = []
        self._phase = "walk"

    # -- knobs -----------------------------------------------------------------------------------

    def make_knobs(self, orders: dict) -> list[Knob]:
        """``orders`` maps "attn" and "mlp" to unit lists, least important first."""
        knobs = [Knob(f"{run} sub-blocks skipped", tuple(orders[run])) for run in ("attn", "mlp")]
        self.stride = self._stride(knobs)
        return knobs

    def _stride(self, knobs: list[Knob]) -> int:
        """Knob steps per move, so that the walk reaches the target in about ``walk_steps`` moves."""
        needed = 1.0 - 1.0 / self.space.target_speedup
        units = [unit for knob in knobs for unit in knob.steps if isinstance(unit, tuple)]
        if needed <= 0 or not units:
            return 1
        mean_share = sum(self.space.unit_cost(unit) for unit in units) / len(units)
        return max(1, math.ceil(needed / mean_share / self.walk_steps))

    # -- expert thresholds (MoE) ------------------------------------------------------------------

    def _init_experts(self, target, grid, tolerance, importance, groups, renormalize) -> None:
        groups = (groups,) if isinstance(groups, str) else tuple(groups)
        if len(groups) not in WALKS or len(set(groups)) != len(groups):
            raise SearcherError(f"frontier: expert_groups must name one or two distinct token groups, got {groups}")
        if not isinstance(grid, int) or grid < 2:
            raise SearcherError(f"frontier: expert_grid must be an integer >= 2, got {grid!r}")
        if target is not None and not 0.0 < target <= 1.0:
            raise SearcherError(f"frontier: expert_skip_ratio must lie in (0, 1], got {target}")
        if not 0.0 <= tolerance < 0.5:
            raise SearcherError(f"frontier: expert_tolerance must lie in [0, 0.5), got {tolerance}")
        self.expert_groups, self.expert_grid, self.expert_tolerance = groups, grid, tolerance
        self.renormalize = renormalize
        self.target_skip_ratio = target if target is not None else self._skip_ratio_for_target()
        self.importance: tuple[float, ...] | None = tuple(float(a) for a in importance) if importance else None
        self.expert_results: dict[tuple[int, ...], tuple[float, float]] = {}  # point -> (skip ratio, quality)
        self.expert_records: dict[tuple[int, ...], tuple[Schedule, EvalResult]] = {}
        self._walk = None
        self._walk_point: tuple[int, ...] | None = None

    def _skip_ratio_for_target(self) -> float:
        """The routed-expert share that must be skipped for the whole chain to reach the speed target."""
        cost = self.space.cost_model
        routed = sum(cost.routed)
        if routed <= 0:
            raise SearcherError("frontier: experts=True needs an MoE model (this one routes no experts)")
        needed = (1.0 - 1.0 / self.space.target_speedup) * cost.params_per_token(None) / routed
        if needed > 1.0:
            raise SearcherError(f"frontier: skipping every routed expert gives less than {self.space.target_speedup:g}x")
        return max(needed, self.expert_tolerance)

    def threshold(self, index: int) -> float:
        """Grid index -> tau; the top index exceeds every alpha_l * pi (pi <= 1), so it skips everything."""
        top = max(self.importance) * (1.0 + 1e-6) + 1e-12
        return top * index / self.expert_grid

    def expert_schedule(self, point: tuple[int, ...]) -> Schedule:
        from colasearch.moe import expert_skipping_section

        thresholds = {group: self.threshold(index) for group, index in zip(self.expert_groups, point)}
        section = expert_skipping_section(self.importance, thresholds, renormalize=self.renormalize)
        return self.space.schedule(self.space.full_chain()).with_fields(experts=section)

    def use_importance(self, importance) -> None:
        """A stored calibration (e.g. from the study on resume), so it is not recomputed."""
        if self.experts and self.importance is None:
            self.importance = tuple(float(alpha) for alpha in importance)

    def study_attributes(self) -> dict:
        return {"expert_importance": list(self.importance)} if self.experts and self.importance else {}

    def _prepare_experts(self, evaluator) -> None:
        if self.importance is None:
            from colasearch.moe import calibrate_importance

            input_ids, attention_mask = evaluator.calibration_batch(max_items=self.calibration_items)
            self.importance = calibrate_importance(evaluator.model, input_ids, attention_mask)
        if len(self.importance) != self.space.num_layers:
            raise SearcherError(f"frontier: importance has {len(self.importance)} values, the model "
                                f"{self.space.num_layers} layers")
        self._walk = WALKS[len(self.expert_groups)](self.expert_grid, self.target_skip_ratio, self.expert_tolerance)
        self._advance_walk(None)

    def _advance_walk(self, measured) -> None:
        try:
            self._walk_point = next(self._walk) if measured is None else self._walk.send(measured)
        except StopIteration:
            self._walk_point = None
            self._phase = "done"

    def _ask_experts(self, n: int) -> list[Schedule]:
        if self._walk_point is None or self._pending or n < 1:
            return []
        schedule = self.expert_schedule(self._walk_point)
        self._pending[schedule.key] = self._walk_point
        return [schedule]

    def _tell_experts(self, schedule: Schedule, result: EvalResult) -> None:
        point = self._pending.pop(schedule.key, None)
        if point is None:
            return
        ratio = result.expert_skip_ratio
        if ratio is None:
            raise SearcherError("frontier: the evaluator did not measure the expert skip ratio "
                                "(EvalResult.expert_skip_ratio)")
        measured = (float(ratio), self.quality(result))
        self.expert_results[point] = measured
        self.expert_records[point] = (schedule, result)
        self._advance_walk(measured)

    @property
    def expert_best(self) -> tuple[Schedule, EvalResult] | None:
        """The best evaluated point whose measured skip ratio reaches the target (ties: less skipping)."""
        reaching = [point for point, (ratio, _) in self.expert_results.items()
                    if reaches(ratio, self.target_skip_ratio, self.expert_tolerance)]
        if not reaching:
            return None
        best = max(reaching, key=lambda point: (self.expert_results[point][1], -self.expert_results[point][0]))
        return self.expert_records[best]

    # -- layer knobs -----------------------------------------------------------------------------

    def prepare(self, evaluator) -> None:
        if self.experts:
            if self._walk is None:
                self._prepare_experts(evaluator)
            return
        if self.knobs is not None:
            return
        input_ids, attention_mask = evaluator.calibration_batch(max_items=self.calibration_items)
        scores = unit_scores(evaluator.model, input_ids, attention_mask, self.score, sub_blocks=True)
        self.knobs = self.make_knobs(self.importance_orders(scores))

    def importance_orders(self, scores: dict) -> dict:
        layers = [layer for layer in range(self.space.num_layers) if layer not in self.space.protected_layers]
        return {run: sorted(((layer, run) for layer in layers), key=lambda unit: (scores[unit], unit))
                for run in ("attn", "mlp")}

    def chain_for(self, levels: Levels):
        skipped = [unit for knob, level in zip(self.knobs, levels) for unit in knob.steps[:level]]
        return self.space.chain_skipping(skipped)

    def schedule_for(self, levels: Levels) -> Schedule | None:
        chain = self.chain_for(levels)
        return self.space.schedule(chain) if chain and self.space.length_ok(chain) else None

    # -- walk ------------------------------------------------------------------------------------

    def _moves(self, levels: Levels) -> list[Levels]:
        moves = []
        for index, knob in enumerate(self.knobs):
            if levels[index] < knob.size:
                moved = levels[:index] + (min(levels[index] + self.stride, knob.size),) + levels[index + 1:]
                if self.schedule_for(moved) is not None:
                    moves.append(moved)
        return moves

    def _boundary(self) -> list[Levels]:
        """Cheapest-enough points of the first two knobs: for each level of one, the least of the other."""
        first, second = self.knobs[0], self.knobs[1]
        rest = self.current[2:]
        points = []
        for a in range(first.size + 1):
            for b in range(second.size + 1):
                levels = (a, b) + rest
                chain = self.chain_for(levels)
                if chain and self.space.length_ok(chain) and self.space.meets_target(chain):
                    points.append(levels)
                    break
        distance = lambda levels: (sum(abs(x - y) for x, y in zip(levels, self.current)), levels)  # noqa: E731
        return sorted((point for point in points if point not in self.results), key=distance)

    def _advance(self) -> None:
        """Move the walk on once every candidate of this step has a result."""
        while self._phase == "walk":
            if self.current is None:
                return
            if self.space.meets_target(self.chain_for(self.current)):
                self._phase = "boundary"
                self._queue = self._boundary()
                if not self._queue:
                    self._phase = "done"
                return
            moves = self._moves(self.current)
            if not moves:
                self._phase = "done"
                return
            if any(move not in self.results for move in moves):
                return
            cost_now = self.space.cost_fraction(self.chain_for(self.current))

            def loss_per_saving(move):
                saved = max(cost_now - self.space.cost_fraction(self.chain_for(move)), 1e-12)
                return ((self.results[self.current] - self.results[move]) / saved, move)

            self.current = min(moves, key=loss_per_saving)

    def start_schedule(self) -> Schedule | None:
        # Expert thresholds keep every layer and their cost is measured, not projected: a layer-pruning
        # start is not a point of this search's space.
        return None if self.experts else super().start_schedule()

    def ask(self, n: int = 1) -> list[Schedule]:
        if self.experts:
            if self._walk is None:
                raise SearcherError("frontier: prepare(evaluator) must run before ask")
            return self._ask_experts(n)
        if self.knobs is None:
            raise SearcherError("frontier: prepare(evaluator) must run before ask")
        zero = (0,) * len(self.knobs)
        if self.current is None:
            if self._pending:
                return []
            candidates = [zero]
        elif self._phase == "walk":
            candidates = [move for move in self._moves(self.current) if move not in self.results]
        elif self._phase == "boundary":
            candidates = [point for point in self._queue if point not in self.results]
        else:
            candidates = []
        proposals = []
        for levels in candidates:
            if len(proposals) >= n:
                break
            schedule = self.schedule_for(levels)
            if schedule.key in self._pending:
                continue
            self._pending[schedule.key] = levels
            proposals.append(schedule)
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        if self.experts:
            self._tell_experts(schedule, result)
            return
        levels = self._pending.pop(schedule.key, None)
        if levels is None:
            return
        self.results[levels] = self.quality(result)
        if self.current is None:
            self.current = levels
        if self._phase == "boundary":
            self._queue = [point for point in self._queue if point != levels]
            if not self._queue:
                self._phase = "done"
        self._advance()

    @property
    def finished(self) -> bool:
        return self._phase == "done" and not self._pending
