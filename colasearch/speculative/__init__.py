"""Lossless mode: a schedule as the draft model of self-speculative greedy decoding."""

from colasearch.speculative.decoding import SpeculativeStats, speculative_generate
from colasearch.speculative.acceptance import acceptance_extra, expected_speedup, measure_acceptance

__all__ = ["SpeculativeStats", "acceptance_extra", "expected_speedup", "measure_acceptance", "speculative_generate"]
