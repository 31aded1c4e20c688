"""The run loop shared by every searcher: budget, caching, storage and resume, executors."""

from colasearch.executor import Executor, InProcessExecutor
from colasearch.search.loop import SearchOutcome, run_search
from colasearch.search.storage import RunStore, open_storage

__all__ = ["Executor", "InProcessExecutor", "RunStore", "SearchOutcome", "open_storage", "run_search"]
