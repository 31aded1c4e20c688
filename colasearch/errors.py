"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class ColasearchError(Exception):
    """Bad input from the user (file, model, flag). Never a bug in colasearch."""


class ScheduleError(ColasearchError):
    """A schedule file that is malformed or does not fit the model."""


class ModelNotFoundError(ColasearchError):
    """A model that cannot be found or loaded offline."""


class TaskError(ColasearchError):
    """A task specification or task file that cannot be used."""


def validation_message(error, subject: str = "value") -> str:
    """A pydantic ``ValidationError`` as one line: where its first problem is, what it is, how many more."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or subject
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
