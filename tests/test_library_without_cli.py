"""The library does not reach up into the command line: a Python caller, a sweep's Ray task and the study
plot run without typer, and a command is a thin layer over the library (issue 31)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "colasearch"


def cli_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):  # imports inside functions too
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names += [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
    return sorted({name for name in names if name == "colasearch.cli" or name.startswith("colasearch.cli.")})


def test_no_library_module_imports_the_cli():
    library = [path for path in PACKAGE.rglob("*.py")
               if "cli" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py"]
    assert len(library) > 20
    importing = {str(path.relative_to(PACKAGE)): cli_imports(path) for path in library if cli_imports(path)}
    assert importing == {}


def test_a_planted_cli_import_is_found(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def cell():\n    from colasearch.cli.app import main\n    import colasearch.cli\n")
    assert cli_imports(planted) == ["colasearch.cli", "colasearch.cli.app", "colasearch.cli.app.main"]
