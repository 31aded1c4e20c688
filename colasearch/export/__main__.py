"""``python -m colasearch.export`` regenerates ``schedules/schema.json`` from the Schedule model."""

from colasearch.export.json import write_schema

print(write_schema())
