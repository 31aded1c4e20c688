"""Where the benchmarks find external data (ARC-Easy, PIQA, HellaSwag, WikiText-2): --data or COLASEARCH_DATA.

The repository ships none of it, so a benchmark that needs it stops with one clear line instead of
guessing a path beside the checkout.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=os.environ.get("COLASEARCH_DATA") or None,
                        help="directory of the benchmark data (default: $COLASEARCH_DATA)")


def data_dir(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> Path:
    """The resolved --data directory, holding every file in ``names``; a usage error otherwise."""
    if args.data is None:
        parser.error("no benchmark data: pass --data DIR or set COLASEARCH_DATA")
    directory = args.data.expanduser().resolve()
    missing = [name for name in names if not (directory / name).is_file()]
    if not directory.is_dir() or missing:
        parser.error(f"--data {args.data}: {'not a directory' if not directory.is_dir() else 'missing ' + ', '.join(missing)}")
    return directory


def task_spec(parser: argparse.ArgumentParser, args: argparse.Namespace, spec: str) -> str:
    """A ``kind:file`` task of the benchmarks (``searchers.TASKS``) as a task spec with its file under --data,
    which must hold it; a usage error otherwise."""
    kind, name = spec.split(":", 1)
    return f"{kind}:{data_dir(parser, args, name) / name}"
