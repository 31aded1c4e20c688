"""WSGI middleware in front of optuna-dashboard: only this loopback port's own requests, and only reads unless asked.

optuna-dashboard has no authentication, and can rename, delete and annotate studies. Binding to
127.0.0.1 keeps other machines out, but not a web page in the user's own browser: through DNS
rebinding a page's host name can resolve to 127.0.0.1, and the browser then sends that page's host
in the ``Host`` header. So a request whose ``Host`` is not the address the server is bound to is
refused, and writes are refused altogether unless ``--allow-edits`` was given, since any local user
can send a request with the right ``Host``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Every optuna-dashboard route that changes a study is POST, PUT or DELETE; reading is GET (HEAD is GET's headers).
READ_METHODS = frozenset({"GET", "HEAD"})


def allowed_hosts(address: str, port: int) -> frozenset[str]:
    """The ``Host`` values a browser sends for ``address:port``.

    ``localhost`` is accepted next to 127.0.0.1: browsers resolve it to loopback themselves, so a page
    cannot rebind it, and users type it. A browser leaves the port out of ``Host`` only for port 80."""
    names = {address} | ({"localhost"} if address == "127.0.0.1" else set())
    hosts = {f"{name}:{port}" for name in names}
    return frozenset(hosts | (names if port == 80 else set()))


def _refuse(start_response, status: str, reason: str, headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = f"{reason}\n".encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            *headers])
    return [body]


def guarded(application: Callable, address: str, port: int, allow_edits: bool = False) -> Callable:
    """``application`` answering only requests for ``address:port``; with ``allow_edits`` False, only reads."""
    hosts = allowed_hosts(address, port)
    origins = frozenset(f"http://{host}" for host in hosts)

    def guard(environ, start_response):
        host = environ.get("HTTP_HOST", "").strip().lower()
        if host not in hosts:
            return _refuse(start_response, "403 Forbidden", "colasearch dashboard: this server answers only "
                                                            f"http://{address}:{port}")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in READ_METHODS:
            if not allow_edits:
                return _refuse(start_response, "405 Method Not Allowed",
                               "colasearch dashboard is read-only; restart it with --allow-edits to change studies",
                               [("Allow", ", ".join(sorted(READ_METHODS)))])
            # A page elsewhere can still post a form to the right host; its browser names the page's origin.
            origin = environ.get("HTTP_ORIGIN")
            if origin is not None and origin.lower() not in origins:
                return _refuse(start_response, "403 Forbidden", "colasearch dashboard: edits only from its own page")
        return application(environ, start_response)

    return guard
