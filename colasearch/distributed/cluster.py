"""Start or join Ray. A local Ray stays on loopback; a cluster address is joined as given."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys

from colasearch.errors import ColasearchError

# Without this a local Ray listens on every interface; it must be set before Ray starts.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
AUTH_MODE, AUTH_TOKEN = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"


def require_token() -> None:
    """Ray's token authentication for a local Ray, with a fresh token of this process's own.

    On loopback any *local* user can still reach Ray's ports and submit code that runs as this user; with
    a token only processes that hold it can. The token lives in this process's environment (readable by
    this user alone, and inherited by Ray's processes), never in a shared file. A user who set
    RAY_AUTH_MODE has chosen, and is not overridden. A Ray this process already runs keeps the token it
    started with: refreshing Ray's cached config under it cuts its driver off from its own raylet.
    """
    if AUTH_MODE in os.environ or ray_running():
        return
    os.environ[AUTH_MODE] = "token"
    os.environ.setdefault(AUTH_TOKEN, secrets.token_hex(32))
    if "ray" in sys.modules:  # Ray caches its config at import: refresh it, as Ray does when it enables tokens
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def ray_running() -> bool:
    """Whether this process is connected to a Ray already (without importing Ray when it never was)."""
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """``address=None`` starts Ray in this process's machine with no dashboard; otherwise join ``address``
    (``auto`` or ``ray://host:port``)."""
    if address is None:
        # Child processes read the variable; this process may have imported Ray already, so its
        # constant is set too.
        os.environ.update(LOOPBACK_ONLY)
        if not ray_running():
            require_token()
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        return
    try:
        if address is None:
            ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"env_vars": dict(LOOPBACK_ONLY)})
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "a local Ray" if address is None else f"the Ray cluster at {address!r}"
        raise ColasearchError(f"cannot start {where}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def shutdown_ray() -> None:
    """Stop (a local) or leave (a cluster's) Ray, with its processes on this machine; a no-op when none."""
    if ray_running():
        sys.modules["ray"].shutdown()


@contextlib.contextmanager
def ray_started_here():
    """Stops, when the block ends however it ends, a Ray the block started; a caller's own Ray (running
    before the block) is theirs to stop and is left running."""
    was_running = ray_running()
    try:
        yield
    finally:
        if not was_running:
            shutdown_ray()
