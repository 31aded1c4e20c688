"""Walks over MoE expert-skipping thresholds: the measured skip ratio rises with every threshold.

A walk is a generator: it yields a point (one grid index per token group) and is sent back
``(skip_ratio, quality)`` for it, so the frontier searcher can drive it through ask/tell. With one
group the walk bisects the grid for the least threshold that reaches the target skip ratio; with
two it walks the staircase of least-enough points with two pointers (the first group's index up,
the second's down), O(grid) evaluations, as in MoDES's dual-modality threshold search.
"""

from __future__ import annotations

from collections.abc import Generator

Point = tuple[int, ...]
Walk = Generator[Point, tuple[float, float], None]


def bisection(grid: int, target: float, tolerance: float) -> Walk:
    """The least index of 0..grid whose ratio reaches ``target - tolerance``; index 0 skips nothing and
    index ``grid`` skips everything, so neither is evaluated. About log2(grid) evaluations."""
    low, high = 0, grid  # ratio(low) < target - tolerance <= ratio(high)
    while high - low > 1:
        middle = (low + high) // 2
        ratio, _ = yield (middle,)
        if ratio >= target - tolerance:
            high = middle
            if ratio <= target + tolerance:
                return
        else:
            low = middle


def staircase(grid: int, target: float, tolerance: float) -> Walk:
    """For every index of the first group, the least index of the second that reaches the target.

    The second pointer only moves down as the first moves up (more skipping in one group needs less in
    the other), so the walk evaluates at most 2 * (grid + 1) points.
    """
    first, second = 0, grid
    while first <= grid and second >= 0:
        ratio, _ = yield (first, second)
        if ratio >= target - tolerance:
            second -= 1
        else:
            first += 1


WALKS = {1: bisection, 2: staircase}


def reaches(ratio: float, target: float, tolerance: float) -> bool:
    return ratio >= target - tolerance
