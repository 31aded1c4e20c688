"""A local Ray started by colasearch takes Ray's token authentication, with a token of this process's own."""

import os

from colasearch.distributed import cluster


def test_a_local_ray_requires_a_fresh_token(monkeypatch):
    monkeypatch.delenv(cluster.AUTH_MODE, raising=False)
    monkeypatch.delenv(cluster.AUTH_TOKEN, raising=False)
    cluster.require_token()
    assert os.environ[cluster.AUTH_MODE] == "token"
    token = os.environ[cluster.AUTH_TOKEN]
    assert len(token) == 64 and int(token, 16) >= 0  # 256 random bits, hex
    cluster.require_token()
    assert os.environ[cluster.AUTH_TOKEN] == token  # one token per process: a second start keeps it


def test_a_users_own_choice_of_auth_mode_is_kept(monkeypatch):
    monkeypatch.setenv(cluster.AUTH_MODE, "disabled")
    monkeypatch.delenv(cluster.AUTH_TOKEN, raising=False)
    cluster.require_token()
    assert os.environ[cluster.AUTH_MODE] == "disabled" and cluster.AUTH_TOKEN not in os.environ


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
