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

A file named on purpose (``--config FILE`` or ``COLASEARCH_CONFIG``) may set any option. A ``colasearch.yaml``
merely found in the working folder may have come with a cloned repository, so it may not set an option
that reaches the network, loads code or destroys data (UNTRUSTED_OPTIONS), nor write outside its own
folder (OUTPUT_OPTIONS). Whichever file is applied is named on stderr with the keys it sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from colasearch.errors import ColasearchError, brief
from colasearch.files import read_yaml

CONFIG_FILE = "colasearch.yaml"
CONFIG_ENV = "COLASEARCH_CONFIG"

# Parameter names a found file may not set, and why.
UNTRUSTED_OPTIONS = {
    "address": "it joins a Ray cluster, whose replies are unpickled",
    "storage": "it sends the study to another file or database",
    "lm_eval_include": "lm-eval imports Python from that folder",
    "overwrite": "it replaces existing results",
    "resume": "it continues and extends an existing study",
    "yes": "it deletes without asking",
    "allow_edits": "it lets any local user change studies",
}
# Parameter names of paths a command writes: a found file may name only paths inside its own folder.
OUTPUT_OPTIONS = frozenset({"out", "out_dir", "png", "cache"})


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    named_by: str | None  # "--config" or CONFIG_ENV for a file named on purpose; None for one found

    @property
    def trusted(self) -> bool:
        return self.named_by is not None


def find_config(named: Path | None, named_by: str = "--config") -> ConfigFile | None:
    """The config file to apply: the one named (which must exist), else ``colasearch.yaml`` here, else None."""
    if named is not None:
        if not named.is_file():
            raise ColasearchError(f"{named_by} names {named}, which is not a file")
        return ConfigFile(named, named_by)
    found = Path(CONFIG_FILE)
    return ConfigFile(found, None) if found.is_file() else None


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


def _flag(command, name: str) -> str:
    parameter = next(parameter for parameter in command.params if parameter.name == name)
    return next((flag for flag in parameter.opts if flag.startswith("--")), parameter.opts[0])


def _inside(folder: Path, value) -> bool:
    """Whether the path ``value`` (relative to the working folder) resolves, through any links, inside ``folder``."""
    target = Path(os.path.expanduser(str(value)))
    return Path.cwd().joinpath(target).resolve().is_relative_to(folder.resolve())


def _check_trust(config: ConfigFile, command, name: str, value, key: str) -> None:
    """Refuse ``key`` (as written in the file) when an untrusted file may not set parameter ``name``."""
    if config.trusted:
        return
    if name in UNTRUSTED_OPTIONS:
        problem = f"{key} cannot come from a config found in the working folder ({UNTRUSTED_OPTIONS[name]})"
    elif name in OUTPUT_OPTIONS and value is not None and not _inside(config.path.parent, value):
        problem = f"{key} {brief(str(value), 60)} is outside the working folder, and a config found there writes only inside it"
    else:
        return
    raise ColasearchError(f"{config.path}: {problem}; pass {_flag(command, name)} on the command line, "
                          f"or name the file with --config FILE or {CONFIG_ENV}")


def _command_defaults(command, shared: dict, own: dict, where: str, config: ConfigFile, section: str) -> dict:
    if _is_group(command):
        defaults = {}
        for name, sub in command.commands.items():
            sub_section = own.get(name, {})
            if not isinstance(sub_section, dict):
                raise ColasearchError(f"{where}.{name}: expected a mapping of options")
            defaults[name] = _command_defaults(sub, shared, sub_section, f"{where}.{name}", config, f"{section}.{name}")
        unknown = sorted(set(own) - set(command.commands), key=str)
        if unknown:
            raise ColasearchError(f"{where}: unknown command {unknown[0]!r}")
        return defaults
    names = _option_names(command)
    unknown = sorted(set(own) - set(names), key=str)
    if unknown:
        hint = " (YAML reads an unquoted yes, no, on or off as a boolean: quote the key)" \
            if isinstance(unknown[0], bool) else ""
        raise ColasearchError(f"{where}: {command.name} has no option {unknown[0]!r}{hint}")
    defaults = {}
    for key, value in shared.items():
        if key in names:
            _check_trust(config, command, names[key], value, key)
            defaults[names[key]] = value
    for key, value in own.items():
        _check_trust(config, command, names[key], value, f"{section}.{key}")
        defaults[names[key]] = value
    return defaults


def _keys(data: dict, prefix: str = "") -> list[str]:
    """The keys a config sets, as written: ``model``, ``run.budget``, ``cache.list.json``."""
    keys = []
    for key, value in data.items():
        keys += _keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return keys


def project_defaults(group, config: ConfigFile | None) -> tuple[dict | None, str | None]:
    """The ``default_map`` for ``group`` from ``config`` and the line that says what it set; (None, None) without one.

    Every key is checked against every command before anything runs, so a file is applied whole or refused."""
    if config is None:
        return None, None
    path = config.path
    data = read_yaml(path, "config") or {}
    if not isinstance(data, dict):
        raise ColasearchError(f"{path}: expected a mapping of commands and options")
    shared = {key: value for key, value in data.items() if not isinstance(value, dict)}
    known = {name for command in group.commands.values() for name in _option_names(command)} | {
        name for command in group.commands.values() if _is_group(command)
        for sub in command.commands.values() for name in _option_names(sub)}
    unknown = sorted(set(shared) - known, key=str)
    if unknown:
        raise ColasearchError(f"{path}: no command has an option {unknown[0]!r}")
    sections = {key: value for key, value in data.items() if isinstance(value, dict)}
    missing = sorted(set(sections) - set(group.commands), key=str)
    if missing:
        raise ColasearchError(f"{path}: unknown command {missing[0]!r}")
    defaults = {name: _command_defaults(command, shared, sections.get(name, {}), f"{path}: {name}", config, name)
                for name, command in group.commands.items()}
    keys = _keys(data)
    line = f"colasearch: config {path} sets {', '.join(keys)}" if keys else None
    if line is not None and len(line) > 280:  # a long file still gets one readable line
        line = line[:277] + "..."
    return defaults, line
