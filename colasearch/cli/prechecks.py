"""Checks a command makes before any work; they live in the library (:mod:`colasearch.run_checks`), which the
run pipeline shares, and are named here for the commands."""

from colasearch.run_checks import (  # noqa: F401
    check_at_least, check_measured_workers, check_output_file, check_output_folder, check_run_outputs,
    check_searcher_options,
)
