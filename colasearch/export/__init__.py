"""Ship a schedule where a layer list cannot go: a plain checkpoint, a mergekit config, or JSON."""

from colasearch.export.checkpoint import export_checkpoint, materialized_config_fields
from colasearch.export.json import schedule_json_schema, write_json, write_schema
from colasearch.export.mergekit import MergekitSource, layer_ranges, mergekit_config, mergekit_source, write_mergekit
from colasearch.export.support import layer_level_problems, require_layer_level

EXPORT_FORMATS = ("checkpoint", "mergekit", "json")

__all__ = [
    "EXPORT_FORMATS", "MergekitSource", "export_checkpoint", "layer_level_problems", "layer_ranges",
    "materialized_config_fields", "mergekit_config", "mergekit_source", "require_layer_level", "schedule_json_schema", "write_json", "write_mergekit", "write_schema",
]
