import json
import subprocess
import sys

HEAVY = ("ray", "optuna")


def test_the_loader_side_imports_without_ray_or_optuna():
    script = (
        "import json, sys\n"
        "import colasearch\n"
        "from colasearch import Schedule, apply_schedule\n"
        "assert Schedule and apply_schedule\n"
        f"print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] in {HEAVY!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
