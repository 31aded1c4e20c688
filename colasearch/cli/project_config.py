"""``colasearch.yaml``: a project's own defaults for command options; a flag on the command line still wins.

    # colasearch.yaml
    model: ./models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf   # every command with a --model option
    run:
      budget: 50
      target-speedup: 1.3
    cache:
      list: {json: true}

It becomes click's ``default_map``, so every option keeps its own type checks. Top-level options apply to
every command that has them; a misspelled command or option is an error, not a silently ignored line.
"""

from __future__ import annotations

import os
from pathlib import Path

from colasearch.errors import ColasearchError
from colasearch.files import read_yaml

CONFIG_FILE = "colasearch.yaml"


def config_path() -> Path:
    return Path(os.environ.get("COLASEARCH_CONFIG", CONFIG_FILE))


def _is_group(command) -> bool:
    # Duck-typed: typer builds on its own copy of click, whose classes are not click's.
    return hasattr(command, "commands")


def _option_names(command) -> dict[str, str]:
    """Each option's spellings (``target-speedup``, ``target_speedup``, ``json``) to its parameter name."""
    names = {}
    for parameter in command.params:
        if getattr(parameter, "param_type_name", None) == "option" and parameter.name:
            names[parameter.name] = parameter.name
            names[parameter.name.replace("_", "-")] = parameter.name
            for flag in parameter.opts:  # ``json`` for ``--json``, whose parameter is json_output
                if flag.startswith("--"):
                    names[flag[2:]] = names[flag[2:].replace("-", "_")] = parameter.name
    return names


def _command_defaults(command, shared: dict, own: dict, where: str) -> dict:
    if _is_group(command):
        defaults = {}
        for name, sub in command.commands.items():
            section = own.get(name, {})
            if not isinstance(section, dict):
                raise ColasearchError(f"{where}.{name}: expected a mapping of options")
            defaults[name] = _command_defaults(sub, shared, section, f"{where}.{name}")
        unknown = sorted(set(own) - set(command.commands))
        if unknown:
            raise ColasearchError(f"{where}: unknown command {unknown[0]!r}")
        return defaults
    names = _option_names(command)
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise ColasearchError(f"{where}: {command.name} has no option {unknown[0]!r}")
    defaults = {names[key]: value for key, value in shared.items() if key in names}
    defaults.update({names[key]: value for key, value in own.items()})
    return defaults


def project_defaults(group, path: Path | None = None) -> dict | None:
    """The ``default_map`` for ``group`` from the project's config file; None without one."""
    path = path or config_path()
    if not path.is_file():
        return None
    data = read_yaml(path, "config") or {}
    if not isinstance(data, dict):
        raise ColasearchError(f"{path}: expected a mapping of commands and options")
    shared = {key: value for key, value in data.items() if not isinstance(value, dict)}
    known = {name for command in group.commands.values() for name in _option_names(command)} | {
        name for command in group.commands.values() if _is_group(command)
        for sub in command.commands.values() for name in _option_names(sub)}
    unknown = sorted(set(shared) - known)
    if unknown:
        raise ColasearchError(f"{path}: no command has an option {unknown[0]!r}")
    sections = {key: value for key, value in data.items() if isinstance(value, dict)}
    missing = sorted(set(sections) - set(group.commands))
    if missing:
        raise ColasearchError(f"{path}: unknown command {missing[0]!r}")
    return {name: _command_defaults(command, shared, sections.get(name, {}), f"{path}: {name}")
            for name, command in group.commands.items()}
