"""Optuna samplers over keep/skip choices per layer (or sub-block), with optional repeats.

TPE and GP maximize the objective's quality with the speed target as a constraint; NSGA-II keeps
quality and ideal speedup as two objectives, the target again a constraint. The first trials are
the warm-start schedules, then the one-shot importance schedule from the run's prior and its
one-swap neighbours (random schedules on the target without a prior).

The constraint value (the shortfall from the target, 0 when reached) is stored as the trial's user
attribute ``constraint`` and handed to the sampler the way the installed Optuna supports:
``Trial.set_constraint`` on Optuna 5 (where the samplers' ``constraints_func`` is deprecated),
``constraints_func`` on Optuna 4. A proposal that cannot meet the target is known from the cost
model alone, so it is told to the study as infeasible without spending an evaluation. The
searcher's study lives in memory; the run loop's study (journal file or RDB) is the durable record,
and a resumed run replays it through here, which rebuilds the same sampler state.
"""

from __future__ import annotations

import importlib.util

import optuna

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError
from colasearch.searchers.random_search import RandomSearcher
from colasearch.searchers.warm_start import init_schedules, repeated_layers, skipped_units

SAMPLERS = ("tpe", "gp", "nsga2")
_CONSTRAINT_KEY = "speed_target_shortfall"
CONSTRAINT_ATTR = "constraint"
KNOWN_IN_A_ROW_LIMIT = 100
# Optuna 5 added Trial.set_constraint and deprecated the samplers' constraints_func; Optuna 4 has only the latter.
_HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")


def _constraints_from_user_attr(trial: optuna.trial.FrozenTrial) -> tuple[float]:
    return (trial.user_attrs.get(CONSTRAINT_ATTR, 0.0),)


def _set_constraint(trial: optuna.trial.Trial, shortfall: float) -> None:
    trial.set_user_attr(CONSTRAINT_ATTR, shortfall)
    if _HAS_SET_CONSTRAINT:
        trial.set_constraint(_CONSTRAINT_KEY, shortfall)


class OptunaSearcher(BaseSearcher):
    name = "optuna"

    def __init__(self, space, objective, seed: int = 0, *, sampler: str = "tpe",
                 startup_trials: int = 10, max_infeasible_tries: int = 2000, **options):
        super().__init__(space, objective, seed, **options)
        if sampler not in SAMPLERS:
            raise SearcherError(f"optuna: unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
        self.sampler_name = sampler
        self.max_infeasible_tries = max_infeasible_tries
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        constraints = {} if _HAS_SET_CONSTRAINT else {"constraints_func": _constraints_from_user_attr}
        if sampler == "tpe":
            made = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials,
                                              multivariate=True, group=False, **constraints)
            directions = ["maximize"]
        elif sampler == "gp":
            if importlib.util.find_spec("scipy") is None:
                raise SearcherError("optuna: the gp sampler needs scipy (pip install scipy)")
            made = optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials, **constraints)
            directions = ["maximize"]
        else:
            made = optuna.samplers.NSGAIISampler(seed=seed, population_size=8, **constraints)
            directions = ["maximize", "maximize"]
        self.study = optuna.create_study(directions=directions, sampler=made)
        self.startup_trials = startup_trials
        self._trials: dict[str, list[optuna.trial.Trial]] = {}
        self._started = False
        self._exhausted = False
        self._told: set[str] = set()
        self._known_in_a_row = 0  # consecutive feasible proposals of schedules already told

    # -- the first trials ------------------------------------------------------------------------

    def _start(self) -> None:
        """Enqueue the first trials; runs once, after the run loop has set the prior and warm starts.

        Warm-start schedules come first. Then, with a prior, the one-shot importance schedule (skip
        least important first until the target) and its one-swap neighbours (one skipped unit kept,
        one kept unit skipped instead), the likeliest swaps first: the model-based phase starts around
        what one forward pass already says. Without a prior, random skip sets that just reach the
        target, not coin flips per unit (which would skip half the model).
        """
        self._started = True
        for schedule in init_schedules(self):
            self._enqueue(skipped_units(schedule, self.space), repeated_layers(schedule))
        prior = getattr(self, "prior", None)
        if prior is not None:
            starts = self.space.one_shot_starts(prior)
            for skipped in starts:
                self._enqueue(skipped)
            neighbours = _swap_neighbours(self.space, prior, sorted(starts[0]))
            for skipped in neighbours[: max(self.startup_trials - len(starts), 0)]:
                self._enqueue(skipped)
            return
        starter = RandomSearcher(self.space, self.objective, seed=self.seed)
        for _ in range(self.startup_trials):
            kept = _kept_units(starter.sample(), self.space)
            self._enqueue([unit for unit in self.space.units if unit not in kept])

    def _enqueue(self, skipped, repeated=()) -> None:
        skipped, repeated = set(skipped), set(repeated)
        params = {f"skip_{layer}_{run}": (layer, run) in skipped for layer, run in self.space.units}
        if self.space.repeats:
            params.update({f"repeat_{layer}": layer in repeated for layer in range(self.space.num_layers)})
        self.study.enqueue_trial(params)

    def _suggest(self, trial: optuna.trial.Trial) -> Schedule | None:
        skipped, repeated = [], []
        for layer, run in self.space.units:
            if trial.suggest_categorical(f"skip_{layer}_{run}", [False, True]):
                skipped.append((layer, run))
        if self.space.repeats:
            for layer in range(self.space.num_layers):
                if trial.suggest_categorical(f"repeat_{layer}", [False, True]):
                    repeated.append(layer)
        chain = self.space.chain_skipping(skipped, repeated)
        if not chain or not self.space.length_ok(chain):
            return None
        return self.space.schedule(chain)

    def _values(self, quality: float, schedule: Schedule):
        return quality if self.sampler_name != "nsga2" else (quality, self.space.speedup(schedule))

    def ask(self, n: int = 1) -> list[Schedule]:
        if not self._started:
            self._start()
        proposals = []
        tries = 0
        while len(proposals) < n and tries < self.max_infeasible_tries:
            tries += 1
            trial = self.study.ask()
            schedule = self._suggest(trial)
            if schedule is None or not self.space.meets_target(schedule):
                # Known infeasible from the cost model: tell it as such and never evaluate it.
                shortfall = self.space.shortfall(tuple(schedule.layers)) if schedule is not None else 1.0
                _set_constraint(trial, max(shortfall, 1e-6))
                floor = -1e9
                self.study.tell(trial, self._values(floor, schedule) if schedule is not None else
                                (floor if self.sampler_name != "nsga2" else (floor, 1.0)))
                continue
            _set_constraint(trial, 0.0)
            waiting = self._trials.setdefault(schedule.key, [])
            waiting.append(trial)
            self._known_in_a_row = self._known_in_a_row + 1 if schedule.key in self._told else 0
            if len(waiting) == 1:
                proposals.append(schedule)
        if not proposals and tries >= self.max_infeasible_tries and not self._trials:
            self._exhausted = True
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        self._told.add(schedule.key)
        quality = self.quality(result)
        for trial in self._trials.pop(schedule.key, []):
            self.study.tell(trial, self._values(quality, schedule))

    @property
    def finished(self) -> bool:
        # A sampler that only re-proposes known schedules (a small space, explored) would have the run
        # loop answer it from the cache forever: stop instead.
        return self._exhausted or self._known_in_a_row >= KNOWN_IN_A_ROW_LIMIT


def _kept_units(schedule: Schedule, space) -> set:
    kept = set()
    for entry in schedule.layers:
        if space.sub_blocks:
            kept |= {(entry.layer, run) for run in ("attn", "mlp") if run == entry.run or entry.run == "all"}
        else:
            kept.add((entry.layer, "all"))
    return kept


def _swap_neighbours(space, prior, skipped: list) -> list[list]:
    """Skip sets one swap away from ``skipped`` that still reach the target, the smallest loss of
    prior importance first (the units at the boundary of the importance order)."""
    kept = [unit for unit in space.units if unit not in skipped]
    swaps = []
    for back in skipped:
        for out in kept:
            candidate = [unit for unit in skipped if unit != back] + [out]
            chain = space.chain_skipping(candidate)
            if chain and space.length_ok(chain) and space.meets_target(chain):
                swaps.append((prior.of(out) - prior.of(back), back, out, candidate))
    return [candidate for *_, candidate in sorted(swaps)]
