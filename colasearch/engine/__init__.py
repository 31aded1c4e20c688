"""The run loop shared by every searcher: budget, caching, storage and resume, executors."""

from colasearch.executor import Executor, InProcessExecutor
from colasearch.engine.loop import SearchOutcome, run_search
from colasearch.engine.storage import RunStore, open_storage

__all__ = ["Executor", "InProcessExecutor", "RunStore", "SearchOutcome", "open_storage", "run_search"]
