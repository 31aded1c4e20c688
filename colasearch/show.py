"""Render a schedule for people: the chain in the terminal (rich) and as a diagram (matplotlib)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from colasearch.schedule import Schedule

RUN_COLORS = {"all": "#3b7dd8", "attn": "#e08a1e", "mlp": "#2e9e5b"}
SKIPPED_COLOR = "#d0d0d0"


@dataclass(frozen=True)
class LayerUse:
    """How the chain uses one layer of the full model."""

    layer: int
    positions: tuple[int, ...]
    runs: tuple[str, ...]

    @property
    def status(self) -> str:
        if not self.positions:
            return "skipped"
        if len(self.positions) > 1:
            return f"repeated x{len(self.positions)}"
        return {"all": "runs", "attn": "attention only", "mlp": "MLP only"}[self.runs[0]]


@dataclass(frozen=True)
class ScheduleSummary:
    num_layers: int
    uses: tuple[LayerUse, ...]
    chain_length: int
    reordered: bool

    @property
    def skipped(self) -> list[int]:
        return [use.layer for use in self.uses if not use.positions]

    @property
    def repeated(self) -> list[int]:
        return [use.layer for use in self.uses if len(use.positions) > 1]

    @property
    def sub_blocks(self) -> list[int]:
        return [use.layer for use in self.uses if any(run != "all" for run in use.runs)]


def summarize(schedule: Schedule, num_layers: int | None = None) -> ScheduleSummary:
    """Per-layer use of the full model; its size comes from the fingerprint unless given."""
    highest = max(entry.layer for entry in schedule.layers) + 1
    fingerprint = schedule.model.fingerprint
    num_layers = max(num_layers or (fingerprint.num_layers if fingerprint else highest), highest)
    positions: dict[int, list[int]] = {layer: [] for layer in range(num_layers)}
    runs: dict[int, list[str]] = {layer: [] for layer in range(num_layers)}
    for position, entry in enumerate(schedule.layers):
        positions[entry.layer].append(position)
        runs[entry.layer].append(entry.run)
    order = [entry.layer for entry in schedule.layers]
    uses = tuple(LayerUse(layer, tuple(positions[layer]), tuple(runs[layer])) for layer in range(num_layers))
    reordered = any(later < earlier for earlier, later in zip(order, order[1:]) if later != earlier)
    return ScheduleSummary(num_layers, uses, len(schedule.layers), reordered)


def _ranges(layers: list[int]) -> str:
    if not layers:
        return "none"
    parts, start = [], layers[0]
    for previous, current in zip(layers, layers[1:] + [None]):
        if current != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = current
    return ", ".join(parts)


def render(schedule: Schedule, console=None, num_layers: int | None = None, ideal_speedup: float | None = None,
           title: str | None = None) -> None:
    """Print the chain, the per-layer table and the metrics."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    summary = summarize(schedule, num_layers)
    model = schedule.model
    heading = title or f"schedule {schedule.key}"
    details = [f"model {model.name or '?'}"]
    if model.fingerprint:
        details.append(f"{model.fingerprint.architecture}, {model.fingerprint.num_layers} layers")
    if schedule.task:
        details.append(f"task {schedule.task}")
    console.print(Text(heading, style="bold"), Text(" (" + "; ".join(details) + ")", style="dim"))

    chain = Text("chain: ")
    for position, entry in enumerate(schedule.layers):
        chain.append(str(entry), style=RUN_COLORS[entry.run] if entry.run != "all" else "bold")
        if position < len(schedule.layers) - 1:
            chain.append(" ")
    console.print(chain)
    console.print(
        f"{summary.chain_length} entries over {summary.num_layers} layers; skipped: {_ranges(summary.skipped)}; "
        f"repeated: {_ranges(summary.repeated)}; sub-blocks: {_ranges(summary.sub_blocks)}; "
        f"order: {'changed' if summary.reordered else 'kept'}"
    )

    table = Table(title="layers of the full model", show_lines=False)
    for column, justify in (("layer", "right"), ("status", "left"), ("chain positions", "left"), ("runs", "left")):
        table.add_column(column, justify=justify)
    styles = {"skipped": "dim", "runs": ""}
    for use in summary.uses:
        table.add_row(str(use.layer), use.status, ", ".join(map(str, use.positions)) or "-", ", ".join(use.runs) or "-",
                      style=styles.get(use.status, "yellow"))
    console.print(table)
    _render_metrics(schedule, console, ideal_speedup)


def _render_metrics(schedule: Schedule, console, ideal_speedup: float | None) -> None:
    from rich.table import Table

    table = Table(title="metrics", show_header=True)
    table.add_column("metric")
    table.add_column("schedule", justify="right")
    table.add_column("full model", justify="right")
    table.add_column("note")
    metrics = schedule.metrics
    quality = metrics.quality if metrics else None
    speedup = metrics.speedup if metrics else None
    if quality is not None:
        table.add_row(f"{quality.metric} (held-out)", f"{quality.heldout:.4f}",
                      "-" if quality.full_heldout is None else f"{quality.full_heldout:.4f}", "")
        if quality.search is not None:
            table.add_row(f"{quality.metric} (search split)", f"{quality.search:.4f}",
                          "-" if quality.full_search is None else f"{quality.full_search:.4f}", "seen by the search")
    ideal = speedup.ideal if speedup is not None else ideal_speedup
    if ideal is not None:
        table.add_row("ideal speedup", f"{ideal:.3f}x", "1.000x", "weights run per token")
    if speedup is not None and speedup.measured is not None:
        table.add_row("measured speedup", f"{speedup.measured:.3f}x", "1.000x",
                      f"{speedup.measured / speedup.ideal:.2f} of ideal on {speedup.device or 'unknown device'}")
    if table.row_count:
        console.print(table)
    else:
        console.print("metrics: none recorded", style="dim")
    provenance = schedule.provenance
    if provenance is not None:
        fields = provenance.model_dump(exclude_none=True)
        console.print("provenance: " + ", ".join(f"{name} {value}" for name, value in fields.items()), style="dim")


def draw_png(schedule: Schedule, path: str | os.PathLike, num_layers: int | None = None, title: str | None = None) -> Path:
    """The full model's layers on the left, the chain on the right, a line from each entry to its layer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    summary = summarize(schedule, num_layers)
    height = max(summary.num_layers, summary.chain_length)
    figure = Figure(figsize=(5.5, max(3.0, 0.22 * height + 1.5)), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    box_width, full_x, chain_x = 1.0, 0.0, 3.0
    for use in summary.uses:
        color = SKIPPED_COLOR if not use.positions else RUN_COLORS["all"]
        axes.add_patch(Rectangle((full_x, use.layer), box_width, 0.8, facecolor=color, edgecolor="black", linewidth=0.4))
        axes.text(full_x - 0.15, use.layer + 0.4, str(use.layer), ha="right", va="center", fontsize=6)
    for position, entry in enumerate(schedule.layers):
        axes.add_patch(Rectangle((chain_x, position), box_width, 0.8, facecolor=RUN_COLORS[entry.run],
                                 edgecolor="black", linewidth=0.4))
        axes.text(chain_x + box_width + 0.15, position + 0.4, str(entry), ha="left", va="center", fontsize=6)
        repeated = entry.layer in summary.repeated
        axes.plot([full_x + box_width, chain_x], [entry.layer + 0.4, position + 0.4],
                  color="#c0392b" if repeated else "#555555", linewidth=0.6, alpha=0.8)
    axes.set_xlim(-1.0, chain_x + box_width + 1.2)
    axes.set_ylim(height + 0.5, -1.2)
    axes.set_xticks([full_x + box_width / 2, chain_x + box_width / 2],
                    [f"full model ({summary.num_layers})", f"schedule ({summary.chain_length})"])
    axes.set_yticks([])
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.legend(handles=[Patch(color=RUN_COLORS["all"], label="whole layer"), Patch(color=RUN_COLORS["attn"], label="attention only"),
                         Patch(color=RUN_COLORS["mlp"], label="MLP only"), Patch(color=SKIPPED_COLOR, label="skipped")],
                loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=6, frameon=False)
    figure.suptitle(title or f"{schedule.model.name or 'schedule'} {schedule.key[:8]}", fontsize=8)
    figure.tight_layout()

    from colasearch.files import write_atomically

    return write_atomically(path, lambda tmp: figure.savefig(tmp, format="png"))
