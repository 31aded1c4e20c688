"""Scores schedules on a task's splits: batched, prefix-cached, and never twice for one schedule."""

from colasearch.evaluator.evaluator import Evaluator, schedule_key
from colasearch.evaluator.prefix_cache import PrefixCache
from colasearch.evaluator.reference import reference_scores
from colasearch.evaluator.result_cache import ResultCache

__all__ = ["Evaluator", "PrefixCache", "ResultCache", "reference_scores", "schedule_key"]
