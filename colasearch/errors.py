"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class ColasearchError(Exception):
    """Bad input from the user (file, model, flag). Never a bug in colasearch."""


class ScheduleError(ColasearchError):
    """A schedule file that is malformed or does not fit the model."""


class ModelNotFoundError(ColasearchError):
    """A model that cannot be found or loaded offline."""


class TaskError(ColasearchError):
    """A task specification or task file that cannot be used."""


def brief(value, limit: int = 80) -> str:
    """``repr(value)`` cut short, built without ever expanding a huge value: errors never echo unbounded input."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxtuple, shortener.maxdict, shortener.maxset = 2, 4, 4, 3, 3
    shortener.maxstring = shortener.maxother = shortener.maxlong = limit
    text = shortener.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def validation_message(error, subject: str = "value") -> str:
    """A pydantic ``ValidationError`` as one line: where its first problem is, what it is, how many more."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part)[:60] for part in first["loc"])[:120] or subject
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg'][:160]}{more}"
