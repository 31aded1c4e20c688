"""What a searcher reads from a schedule it is told to start from (``colasearch run --init``)."""

from __future__ import annotations

from collections import Counter

from colasearch.schedule import Schedule


def skipped_units(schedule: Schedule, space) -> list[tuple[int, str]]:
    """The space's units that ``schedule`` never runs (a whole layer, or one sub-block of a layer)."""
    attention = {entry.layer for entry in schedule.layers if entry.runs_attention}
    mlp = {entry.layer for entry in schedule.layers if entry.runs_mlp}
    present = {"all": lambda layer: layer in attention and layer in mlp,
               "attn": lambda layer: layer in attention, "mlp": lambda layer: layer in mlp}
    return [(layer, run) for layer, run in space.units if not present[run](layer)]


def repeated_layers(schedule: Schedule) -> list[int]:
    """Layers that run more than once."""
    counts = Counter(entry.layer for entry in schedule.layers)
    return sorted(layer for layer, count in counts.items() if count > 1)


def init_schedules(searcher) -> list[Schedule]:
    """The searcher's warm-start schedules (set by the run loop; none when run without it)."""
    return list(getattr(searcher, "init_schedules", None) or ())
