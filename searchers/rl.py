"""DAS-style policy-gradient search: one logit per unit; each round samples units to skip.

Sampling is Plackett-Luce (Gumbel top-k) over the logits, so the most likely units to skip are
sampled first; units are added in that order until the speed target is met, so every sample is a
schedule that can be chosen (no evaluations spent on a curriculum below the target). The logits
start from the run's prior: the least important unit gets the highest skip logit, by rank, so the
first samples scatter around the one-shot importance schedule instead of around a coin flip.
Warm-start schedules (``--init``) are proposed first and raise the logits of the units they skip.
The reward is the objective's quality, against a moving-average baseline. The last evaluation of the
budget goes to the deterministic schedule that skips the most probable units, which is what DAS reports.
"""

from __future__ import annotations

import math

import torch

from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.searchers.base import BaseSearcher, SearcherError
from colasearch.searchers.warm_start import init_schedules, skipped_units


class RLSearcher(BaseSearcher):
    name = "rl"

    def __init__(self, space, objective, seed: int = 0, *, learning_rate: float = 0.5,
                 baseline_momentum: float = 0.8, batch: int = 4, prior_strength: float = 2.0, **options):
        super().__init__(space, objective, seed, **options)
        if prior_strength < 0:
            raise SearcherError(f"rl: prior_strength must be >= 0, got {prior_strength}")
        self.units = list(space.units)
        self.logits = torch.zeros(len(self.units), dtype=torch.float64)
        self.learning_rate = learning_rate
        self.baseline_momentum = baseline_momentum
        self.batch = batch
        self.prior_strength = prior_strength
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.round = 0
        self._pending: dict[str, list[int]] = {}
        self._round_results: list[tuple[list[int], float]] = []
        self._round_asked = 0  # proposals of this round, its opening mode included
        self._side: set[str] = set()  # outstanding proposals that are not policy samples (mode, warm starts)
        self._started = False
        self._warm: list[Schedule] = []
        self._seen: set[str] = set()
        self._round_new = False  # whether this round proposed a schedule not seen before
        self._stale_rounds = 0   # consecutive rounds that proposed nothing new: the policy has converged

    def _start(self) -> None:
        """Logits from the prior and the warm-start schedules; runs once, after the loop has set both."""
        self._started = True
        prior = getattr(self, "prior", None)
        count = len(self.units)
        if prior is not None and count > 1 and self.prior_strength > 0:
            # By rank, not by value: Block Influence is heavy-tailed, ranks are what it gets right.
            ranked = sorted(range(count), key=lambda index: (prior.of(self.units[index]), self.units[index]))
            for rank, index in enumerate(ranked):
                self.logits[index] = self.prior_strength * (1.0 - 2.0 * rank / (count - 1))
        for schedule in init_schedules(self):
            skipped = set(skipped_units(schedule, self.space))
            for index, unit in enumerate(self.units):
                if unit in skipped:
                    self.logits[index] += self.prior_strength or 1.0
            self._warm.append(schedule)

    # -- sampling --------------------------------------------------------------------------------

    def _take_until(self, order: list[int]) -> list[int]:
        chosen: list[int] = []
        for index in order:
            if self.space.meets_target(self.space.chain_skipping([self.units[i] for i in chosen])):
                break
            chosen.append(index)
        return chosen

    def _sample(self) -> list[int]:
        uniform = torch.rand(len(self.units), generator=self.generator, dtype=torch.float64).clamp_min(1e-12)
        gumbel = -torch.log(-torch.log(uniform))
        order = torch.argsort(self.logits + gumbel, descending=True).tolist()
        return self._take_until(order)

    def final_schedule(self) -> Schedule:
        order = torch.argsort(self.logits, descending=True, stable=True).tolist()
        return self.space.schedule_skipping([self.units[i] for i in self._take_until(order)])

    # -- protocol --------------------------------------------------------------------------------

    def _offer(self, schedule: Schedule, proposals: list[Schedule]) -> None:
        """Propose ``schedule`` unless it is already outstanding (it is told once, whoever asked)."""
        if schedule.key not in self._seen:
            self._seen.add(schedule.key)
            self._round_new = True
        if schedule.key not in self._pending and schedule.key not in self._side and \
                all(schedule.key != proposal.key for proposal in proposals):
            proposals.append(schedule)

    def ask(self, n: int = 1) -> list[Schedule]:
        if not self._started:
            self._start()
        proposals: list[Schedule] = []
        if self.finished:
            return proposals
        while self._warm and len(proposals) < n:
            schedule = self._warm.pop(0)
            self._offer(schedule, proposals)
            self._side.add(schedule.key)
        while len(proposals) < n and self._round_asked <= self.batch:
            if self._round_asked == 0:
                # Each round opens with the policy's mode (what DAS reports): with the prior's logits the
                # first one is the one-shot importance schedule; a mode already evaluated is answered free.
                schedule = self.final_schedule()
                self._offer(schedule, proposals)
                self._side.add(schedule.key)
                self._round_asked += 1
                continue
            chosen = self._sample()
            schedule = self.space.schedule_skipping([self.units[i] for i in chosen])
            self._round_asked += 1
            self._offer(schedule, proposals)
            self._pending.setdefault(schedule.key, []).append(chosen)
        return proposals

    def tell(self, schedule: Schedule, result: EvalResult) -> None:
        self._side.discard(schedule.key)
        reward = self.quality(result)
        for chosen in self._pending.pop(schedule.key, []):
            self._round_results.append((chosen, reward))
        if self._round_asked > self.batch and not self._pending and self._round_results:
            self._update()  # the whole round (``batch`` samples after its mode) is in

    def _update(self) -> None:
        rewards = [reward for _, reward in self._round_results]
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        spread = max(math.sqrt(sum((r - self.baseline) ** 2 for r in rewards) / len(rewards)), 1e-6)
        logits = self.logits.clone().requires_grad_(True)
        loss = logits.new_zeros(())
        for chosen, reward in self._round_results:
            loss = loss - (reward - self.baseline) / spread * _plackett_luce_log_prob(logits, chosen)
        (loss / len(self._round_results)).backward()
        with torch.no_grad():
            self.logits -= self.learning_rate * logits.grad
        self.baseline = self.baseline_momentum * self.baseline + (1 - self.baseline_momentum) * sum(rewards) / len(rewards)
        self._round_results = []
        self._round_asked = 0
        self.round += 1
        self._stale_rounds = 0 if self._round_new else self._stale_rounds + 1
        self._round_new = False

    @property
    def finished(self) -> bool:
        # A converged policy only re-proposes what is known (answered free): stop instead of spinning.
        return self._stale_rounds >= 3 and not self._pending and not self._side


def _plackett_luce_log_prob(logits: torch.Tensor, chosen: list[int]) -> torch.Tensor:
    """Log-probability of drawing ``chosen`` first, in that order, without replacement."""
    mask = torch.zeros_like(logits, dtype=torch.bool)
    total = logits.new_zeros(())
    for index in chosen:
        available = logits.masked_fill(mask, -math.inf)
        total = total + logits[index] - torch.logsumexp(available, dim=0)
        mask = mask.clone()
        mask[index] = True
    return total
