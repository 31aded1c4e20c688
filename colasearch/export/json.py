"""The schedule as JSON (for runtimes in other languages) and the JSON Schema that describes both forms."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from colasearch.files import write_text_atomically
from colasearch.schedule import Schedule

SCHEMA_ID = "https://colasearch.dev/schemas/schedule-v1.json"
SHIPPED_SCHEMA = Path(__file__).resolve().parents[2] / "schedules" / "schema.json"


def schedule_json_schema() -> dict[str, Any]:
    """JSON Schema of a version-1 schedule file, generated from the pydantic model.

    Two things the file allows but the model only reaches through its validator are added here:
    a chain entry may be a bare layer index, and the format version must be present.
    """
    schema = Schedule.model_json_schema(mode="validation")
    properties = schema["properties"]
    properties["layers"]["items"] = {
        "anyOf": [
            {"type": "integer", "minimum": 0, "description": "Run the whole layer with this index."},
            {"$ref": "#/$defs/LayerEntry"},
        ]
    }
    properties["layers"]["description"] = (
        "The executed chain, in order. Omitting an index skips that layer; repeating one loops it."
    )
    properties["colasearch_schedule"].pop("default", None)
    properties["colasearch_schedule"]["description"] = "Format version; readers refuse versions they do not know."
    schema["required"] = ["colasearch_schedule", *[name for name in schema.get("required", []) if name != "colasearch_schedule"]]
    schema["description"] = "A colasearch layer schedule (format version 1), as YAML or as JSON."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(schedule_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: str | os.PathLike = SHIPPED_SCHEMA) -> Path:
    """Regenerate ``schedules/schema.json``: ``python -m colasearch.export``."""
    return write_text_atomically(path, schema_text())


def schedule_json(schedule: Schedule) -> str:
    """The same content as the YAML file; JSON is also YAML, so ``Schedule.load`` reads it back."""
    return json.dumps(schedule.to_dict(), indent=2) + "\n"


def write_json(schedule: Schedule, path: str | os.PathLike) -> Path:
    return write_text_atomically(path, schedule_json(schedule))
