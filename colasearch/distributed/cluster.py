"""Start or join Ray. A local Ray stays on loopback; a cluster address is joined as given."""

from __future__ import annotations

import os

from colasearch.errors import ColasearchError

# Without this a local Ray listens on every interface; it must be set before Ray starts.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """``address=None`` starts Ray in this process's machine with no dashboard; otherwise join ``address``
    (``auto`` or ``ray://host:port``)."""
    if address is None:
        # Child processes read the variable; this process may have imported Ray already, so its
        # constant is set too.
        os.environ.update(LOOPBACK_ONLY)
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
    import ray

    if ray.is_initialized():
        ray.shutdown()
