"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class ColasearchError(Exception):
    """Bad input from the user (file, model, flag). Never a bug in colasearch."""


class ScheduleError(ColasearchError):
    """A schedule file that is malformed or does not fit the model."""


class ModelNotFoundError(ColasearchError):
    """A model that cannot be found or loaded offline."""


class TaskError(ColasearchError):
    """A task specification or task file that cannot be used."""
