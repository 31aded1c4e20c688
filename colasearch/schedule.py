"""The schedule file (format version 1): which decoder layers run, in what order, and how."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from colasearch.errors import ScheduleError, brief, validation_message
from colasearch.files import read_yaml, write_text_atomically
from colasearch.fingerprint import Fingerprint, fingerprint

FORMAT_VERSION = 1

# A chain runs each layer at most a few times (a repeat, sub-blocks apart): longer is a broken or hostile
# file. Without a model the absolute bound applies; given one, CHAIN_PER_LAYER times its layers.
MAX_CHAIN_LENGTH = 10_000
CHAIN_PER_LAYER = 4

SubBlock = Literal["all", "attn", "mlp"]


class LayerEntry(BaseModel):
    """One step of the executed chain: a decoder layer, whole or one of its sub-blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: int = Field(ge=0)
    run: SubBlock = "all"

    @property
    def runs_attention(self) -> bool:
        return self.run in ("all", "attn")

    @property
    def runs_mlp(self) -> bool:
        return self.run in ("all", "mlp")

    def to_yaml(self) -> int | dict[str, Any]:
        return self.layer if self.run == "all" else {"layer": self.layer, "run": self.run}

    def __str__(self) -> str:
        return str(self.layer) if self.run == "all" else f"{self.layer}{self.run[0]}"


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    fingerprint: Fingerprint | None = None


# Token groups with their own expert-skipping threshold (MoDES's dual-modality thresholds).
TOKEN_GROUPS = ("text", "image")


class ExpertSkipping(BaseModel):
    """MoDES-style routed-expert skipping: expert i of layer l is skipped when alpha_l * pi_i < tau.

    ``importance`` holds alpha_l, one value per decoder layer (0 for layers without routed experts);
    ``thresholds`` maps a token group to its tau; ``renormalize`` rescales the kept routing weights.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    importance: tuple[float, ...] = Field(min_length=1)
    thresholds: dict[str, float] = Field(min_length=1)
    renormalize: bool = True

    @field_validator("importance")
    @classmethod
    def _importance_is_finite(cls, value):
        if any(not math.isfinite(alpha) or alpha < 0 for alpha in value):
            raise ValueError("importance values must be finite and >= 0")
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_groups(cls, value):
        unknown = sorted(set(value) - set(TOKEN_GROUPS))
        if unknown:
            raise ValueError(f"unknown token group {unknown[0]!r} (known: {', '.join(TOKEN_GROUPS)})")
        if any(not math.isfinite(tau) or tau < 0 for tau in value.values()):
            raise ValueError("thresholds must be finite and >= 0")
        return value


class QualityMetric(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    metric: str
    heldout: float
    full_heldout: float | None = None
    search: float | None = None
    full_search: float | None = None


class SpeedupMetric(BaseModel):
    """``measured`` is shipped only when colasearch.speed's protocol trusts it; otherwise it is null and
    ``flag`` says why. The interval, the layer-count bound, the pairs and the load average say how it was got."""

    model_config = ConfigDict(frozen=True, extra="allow")

    ideal: float
    measured: float | None = None
    device: str | None = None
    interval: tuple[float, float] | None = None
    bound: float | None = None
    pairs: int | None = None
    tokens: int | None = None
    batch_size: int | None = None
    load_average: float | None = None
    flag: str | None = None

    @model_validator(mode="after")
    def _measured_within_bound(self):
        if self.measured is not None and self.bound is not None and self.measured > self.bound:
            raise ValueError(f"measured speedup {self.measured:g} is above its layer-count bound {self.bound:g}")
        if self.measured is not None and self.flag:
            raise ValueError("a flagged measurement has no measured figure (measured: null)")
        return self


class Metrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    quality: QualityMetric | None = None
    speedup: SpeedupMetric | None = None


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    searcher: str | None = None
    budget: int | None = None
    seed: int | None = None
    colasearch_version: str | None = None
    date: str | None = None


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    colasearch_schedule: Literal[1] = FORMAT_VERSION
    model: ModelRef = ModelRef()
    layers: tuple[LayerEntry, ...] = Field(min_length=1, max_length=MAX_CHAIN_LENGTH)
    experts: ExpertSkipping | None = None
    task: str | None = None
    metrics: Metrics | None = None
    provenance: Provenance | None = None

    @field_validator("layers", mode="before")
    @classmethod
    def _entries_from_ints(cls, value):
        if not isinstance(value, (list, tuple)):
            raise ValueError("must be a list of layer entries")
        if len(value) > MAX_CHAIN_LENGTH:  # before any entry is looked at
            raise ValueError(f"the chain has {len(value)} entries; at most {MAX_CHAIN_LENGTH} are accepted")
        return tuple({"layer": entry} if isinstance(entry, int) and not isinstance(entry, bool) else entry
                     for entry in value)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, source: str = "schedule") -> Schedule:
        if not isinstance(data, dict):
            raise ScheduleError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
        version = data.get("colasearch_schedule")
        if version is None:
            raise ScheduleError(f"{source}: missing 'colasearch_schedule' format version")
        if version != FORMAT_VERSION or isinstance(version, bool):  # True == 1 in Python, but is no version
            raise ScheduleError(
                f"{source}: unsupported schedule format version {brief(version)} (this colasearch reads version {FORMAT_VERSION})"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ScheduleError(f"{source}: {validation_message(error, 'schedule')}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Schedule:
        return cls.from_dict(read_yaml(path, "schedule", ScheduleError), source=str(path))

    @classmethod
    def from_layers(cls, entries, model=None, name: str | None = None, **fields) -> Schedule:
        """A schedule of ``entries``; ``model`` gives its fingerprint and, without ``name``, its portable name."""
        if name is None and model is not None:
            from colasearch.loading import portable_name

            name = portable_name(getattr(model, "_colasearch_name", None))
        ref = ModelRef(name=name, fingerprint=fingerprint(model) if model is not None else None)
        try:
            return cls(model=ref, layers=tuple(entries), **fields)
        except ValidationError as error:
            raise ScheduleError(validation_message(error, "schedule")) from None

    @classmethod
    def identity(cls, model, name: str | None = None) -> Schedule:
        return cls.from_layers(range(fingerprint(model).num_layers), model=model, name=name)

    # -- output -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        data["layers"] = [entry.to_yaml() for entry in self.layers]
        speed = self.metrics.speedup if self.metrics is not None else None
        if speed is not None and speed.flag:
            # A flagged figure is written as an explicit null beside its reason, not left out.
            data["metrics"]["speedup"] = {"ideal": speed.ideal, "measured": None, **data["metrics"]["speedup"]}
        return data

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_ScheduleDumper, sort_keys=False, width=100)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a reader never sees a half-written schedule."""
        return write_text_atomically(path, self.to_yaml())

    # -- meaning ------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """Canonical hash of what the schedule executes; metrics and provenance do not change it."""
        payload = {"layers": [entry.to_yaml() for entry in self.layers],
                   "experts": self.experts.model_dump(mode="json") if self.experts else None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    @property
    def chain(self) -> str:
        return " ".join(str(entry) for entry in self.layers)

    def check_fits(self, model, force: bool = False) -> None:
        """Refuse a schedule that was written for another model or names layers the model lacks."""
        actual = fingerprint(model)
        expected = self.model.fingerprint
        if expected is not None and expected != actual and not force:
            differences = [
                f"{field} {getattr(expected, field)!r} != {getattr(actual, field)!r}"
                for field in Fingerprint.model_fields
                if getattr(expected, field) != getattr(actual, field)
            ]
            raise ScheduleError(
                "schedule was written for another model (" + ", ".join(differences) + "); use --force to apply it anyway"
            )
        if len(self.layers) > CHAIN_PER_LAYER * actual.num_layers:
            raise ScheduleError(f"the chain has {len(self.layers)} entries; a {actual.num_layers}-layer model runs at "
                                f"most {CHAIN_PER_LAYER * actual.num_layers} ({CHAIN_PER_LAYER} per layer)")
        out_of_range = sorted({entry.layer for entry in self.layers if entry.layer >= actual.num_layers})
        if out_of_range:
            raise ScheduleError(
                f"layer {out_of_range[0]} is out of range: the model has {actual.num_layers} layers (0-{actual.num_layers - 1})"
            )

    def with_fields(self, **fields) -> Schedule:
        return self.model_copy(update=fields)


class _ScheduleDumper(yaml.SafeDumper):
    """Keeps the layer chain on one readable line."""


def _represent_list(dumper, data):
    flow = all(isinstance(item, (int, float, dict)) for item in data) and len(data) > 0
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ScheduleDumper.add_representer(list, _represent_list)
