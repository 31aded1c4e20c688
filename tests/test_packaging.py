"""Every subpackage ships: a non-editable install must not silently drop one."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "colasearch").rglob("__init__.py")}
    assert found <= listed, f"missing from pyproject packages: {sorted(found - listed)}"
    assert config["package-dir"]["colasearch.searchers"] == "searchers"
    assert config["package-dir"]["colasearch.objectives"] == "objectives"
    assert {"colasearch.searchers", "colasearch.objectives"} <= listed
