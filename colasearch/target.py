"""The speed target of a search: the one owner of the number and of what counts as reaching it.

The search space holds it (``SearchSpace.target``) and the objectives are handed it, so that "is this
schedule fast enough" has one answer, with one tolerance, wherever it is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ideal speedups are ratios of float sums of parameter counts: a schedule that hits the target exactly
# must not be rejected by rounding.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Target:
    """A floor on a speedup (ideal, measured or expected: whichever figure the asker holds the schedule to)."""

    speedup: float = 1.0

    def reaches(self, speedup: float) -> bool:
        return speedup >= self.speedup * (1 - TOLERANCE)

    @classmethod
    def of(cls, target: Target | float | None) -> Target | None:
        """A target from what a caller gives: a Target (the space's, shared), a number, or None for no target."""
        if target is None or isinstance(target, Target):
            return target
        return cls(float(target))
