"""A local Ray started by colasearch takes Ray's token authentication, with a token of this process's own.

The token checks run in a fresh interpreter: ``require_token`` refreshes Ray's cached auth config, and doing
that inside the test process would pull the token from under the package's running Ray (whose driver then
loses its raylet and exits mid-suite).
"""

import json
import os
import subprocess
import sys

from colasearch.distributed import cluster


def _in_fresh_process(code: str, **environment) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in (cluster.AUTH_MODE, cluster.AUTH_TOKEN)}
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_local_ray_requires_a_fresh_token():
    seen = _in_fresh_process(
        "import json, os, ray\n"  # Ray imported first: its cached config is refreshed
        "from colasearch.distributed import cluster\n"
        "cluster.require_token(); first = dict(os.environ)\n"
        "cluster.require_token()\n"
        "print(json.dumps({'mode': first.get(cluster.AUTH_MODE), 'token': first.get(cluster.AUTH_TOKEN),"
        " 'again': os.environ.get(cluster.AUTH_TOKEN)}))")
    assert seen["mode"] == "token"
    assert len(seen["token"]) == 64 and int(seen["token"], 16) >= 0  # 256 random bits, hex
    assert seen["again"] == seen["token"]  # one token per process: a second start keeps it


def test_a_users_own_choice_of_auth_mode_is_kept():
    seen = _in_fresh_process(
        "import json, os\n"
        "from colasearch.distributed import cluster\n"
        "cluster.require_token()\n"
        "print(json.dumps({'mode': os.environ.get(cluster.AUTH_MODE), 'token': os.environ.get(cluster.AUTH_TOKEN)}))",
        **{cluster.AUTH_MODE: "disabled"})
    assert seen == {"mode": "disabled", "token": None}


def test_a_running_ray_still_answers_after_another_require_token():
    """The failure CI met: a token refreshed under a running Ray made its driver exit(1) on the next task."""
    seen = _in_fresh_process(
        "import json, os, ray\n"
        "from colasearch.distributed import cluster\n"
        "cluster.init_ray(num_cpus=1)\n"
        "os.environ.pop(cluster.AUTH_MODE); os.environ.pop(cluster.AUTH_TOKEN)\n"
        "cluster.require_token()\n"
        "answers = ray.get([ray.remote(lambda i: i).remote(i) for i in range(3)])\n"
        "cluster.shutdown_ray()\n"
        "print(json.dumps({'answers': answers}))",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    assert seen == {"answers": [0, 1, 2]}


def test_a_running_ray_keeps_its_token(monkeypatch):
    """A second ``require_token`` while this process's Ray runs must not swap the token under it."""
    monkeypatch.delenv(cluster.AUTH_MODE, raising=False)
    monkeypatch.delenv(cluster.AUTH_TOKEN, raising=False)
    monkeypatch.setattr(cluster, "ray_running", lambda: True)
    cluster.require_token()
    assert cluster.AUTH_MODE not in os.environ and cluster.AUTH_TOKEN not in os.environ


def test_joining_a_cluster_sets_neither_token_nor_loopback(monkeypatch):
    """``--address`` joins a cluster as given: its own auth, its own interfaces."""
    calls = {}
    monkeypatch.delenv(cluster.AUTH_MODE, raising=False)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.update(kwargs))
    cluster.init_ray("ray://cluster.example:10001")
    assert calls["address"] == "ray://cluster.example:10001"
    assert cluster.AUTH_MODE not in os.environ and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
