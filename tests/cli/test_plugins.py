"""Third-party plug-ins: a package installed beside colasearch adds a searcher, an objective and a task kind
through entry points (``colasearch.searchers``, ``colasearch.objectives``, ``colasearch.tasks``), and
``colasearch run`` finds and uses all three by name.

The package is "installed" the cheapest real way: a ``*.dist-info`` folder with ``entry_points.txt`` on
PYTHONPATH, which ``importlib.metadata`` reads as it reads any installed distribution.
"""

import os
import subprocess
import sys
import textwrap

import yaml

PLUGIN = '''
"""A plug-in of each kind; each notes in $PLUGIN_MARKS that it ran."""

import os

from colasearch.objectives import ConstrainedObjective
from colasearch.searchers.random_search import RandomSearcher
from colasearch.tasks import load_task


def mark(what):
    with open(os.environ["PLUGIN_MARKS"], "a") as marks:
        marks.write(what + "\\n")


class MarkedSearcher(RandomSearcher):
    name = "marked-random"

    def ask(self, n=1):
        mark("searcher")
        return super().ask(n)


class MarkedObjective(ConstrainedObjective):
    name = "marked-constrained"

    def values(self, result):
        mark("objective")
        return super().values(result)


def load_marked_task(argument, **options):
    mark("task")
    return load_task("jsonl:" + argument, **options)
'''

ENTRY_POINTS = """
[colasearch.searchers]
marked-random = colasearch_plugin_example:MarkedSearcher

[colasearch.objectives]
marked-constrained = colasearch_plugin_example:MarkedObjective

[colasearch.tasks]
marked = colasearch_plugin_example:load_marked_task
"""


def install_plugin(folder):
    """The plug-in package and its distribution metadata in ``folder``, to be put on PYTHONPATH."""
    folder.mkdir()
    (folder / "colasearch_plugin_example.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "colasearch_plugin_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: colasearch-plugin-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


def colasearch(*args, plugin_path, marks):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PLUGIN_MARKS=str(marks), COLUMNS="400",
               PYTHONPATH=os.pathsep.join(filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "colasearch", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


def test_a_plugin_of_each_kind_is_found_and_run_through_the_cli(tmp_path, assets):
    plugin_path = install_plugin(tmp_path / "site")
    marks, out = tmp_path / "marks.txt", tmp_path / "found.yaml"
    result = colasearch("run", "--model", assets / "tiny", "--task", f"marked:{assets / 'T.jsonl'}",
                        "--searcher", "marked-random", "--objective", "marked-constrained", "--baselines", "",
                        "--budget", "3", "--search-size", "8", "--heldout-size", "8", "--confirm-size", "0",
                        "--target-speedup", "1.1", "--workers", "0", "--no-measure", "--quiet", "--out", out,
                        plugin_path=plugin_path, marks=marks)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert set(marks.read_text().split()) == {"searcher", "objective", "task"}
    provenance = yaml.safe_load(out.read_text())["provenance"]
    assert provenance["searcher"] == "marked-random" and provenance["objective"] == "marked-constrained"


def test_the_searcher_and_objective_help_lists_an_installed_plugin(tmp_path):
    plugin_path = install_plugin(tmp_path / "site")
    marks = tmp_path / "marks.txt"
    with_plugin = colasearch("run", "--help", plugin_path=plugin_path, marks=marks)
    without = colasearch("run", "--help", plugin_path=tmp_path / "nothing-here", marks=marks)
    assert with_plugin.returncode == 0 and without.returncode == 0
    assert "marked-random" in with_plugin.stdout and "marked-constrained" in with_plugin.stdout
    assert "marked-random" not in without.stdout and "evolution" in without.stdout
