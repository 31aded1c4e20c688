"""Lossless mode: a schedule as the draft model of self-speculative greedy decoding."""

from colasearch.speculative.decoding import SpeculativeStats, speculative_generate
from colasearch.speculative.matchness import acceptance_extra, expected_speedup, matchness

__all__ = ["SpeculativeStats", "acceptance_extra", "expected_speedup", "matchness", "speculative_generate"]
