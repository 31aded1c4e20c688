import json
import stat
from pathlib import Path

import jsonschema
import pytest
import yaml

from colasearch import Schedule
from colasearch.errors import ScheduleError
from colasearch.export import schedule_json_schema, write_json
from colasearch.export.json import SHIPPED_SCHEMA, schema_text
from colasearch.files import readable_mode

SCHEDULES = Path(__file__).resolve().parents[2] / "schedules"
SHIPPED = sorted(SCHEDULES.glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SHIPPED_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def rich_schedule():
    return Schedule.from_layers(
        [0, 1, {"layer": 2, "run": "attn"}, 2, 2, {"layer": 5, "run": "mlp"}, 4],
        name="tiny-llama",
        task="arc_easy",
        metrics={"quality": {"metric": "acc", "heldout": 0.61, "full_heldout": 0.64},
                 "speedup": {"ideal": 1.3, "measured": 1.26, "device": "cpu"}},
        provenance={"searcher": "unified", "budget": 40, "seed": 0, "colasearch_version": "0.1.0", "date": "2026-11-29"},
    )


def test_shipped_schema_is_the_generated_one():
    assert SHIPPED_SCHEMA.read_text() == schema_text(), "regenerate with: python -m colasearch.export"


@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_every_shipped_schedule_validates(path, validator):
    validator.validate(yaml.safe_load(path.read_text()))


def test_json_equals_yaml(tmp_path, validator):
    schedule = rich_schedule()
    schedule.save(tmp_path / "s.yaml")
    write_json(schedule, tmp_path / "s.json")
    as_json = json.loads((tmp_path / "s.json").read_text())
    assert as_json == yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert Schedule.load(tmp_path / "s.json") == Schedule.load(tmp_path / "s.yaml") == schedule
    validator.validate(as_json)
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == readable_mode()


@pytest.mark.parametrize(
    "document",
    [
        {"layers": [0, 1]},  # no version
        {"colasearch_schedule": 2, "layers": [0]},
        {"colasearch_schedule": 1, "layers": []},
        {"colasearch_schedule": 1, "layers": [0, -1]},
        {"colasearch_schedule": 1, "layers": [{"layer": 1, "run": "both"}]},
        {"colasearch_schedule": 1, "layers": [0], "extra": True},
    ],
)
def test_schema_and_loader_refuse_the_same_documents(document, validator):
    assert list(validator.iter_errors(document))
    with pytest.raises(ScheduleError):
        Schedule.from_dict(document)


def test_schema_describes_bare_indices_and_entries():
    items = schedule_json_schema()["properties"]["layers"]["items"]["anyOf"]
    assert {"type": "integer", "minimum": 0}.items() <= items[0].items()
    assert items[1] == {"$ref": "#/$defs/LayerEntry"}
