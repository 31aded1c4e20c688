"""``colasearch dashboard``: a study (journal file or RDB URL) in optuna-dashboard, on loopback only.

Each trial is one finished evaluation: its values are the objective's, and its user attributes
carry the chain, the ideal speedup, one ``quality_<metric>`` per task metric and the schedule.
"""

from __future__ import annotations

from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Annotated
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import typer

from colasearch.cli.app import app
from colasearch.errors import ColasearchError

LOOPBACK = "127.0.0.1"  # the dashboard has no authentication: never expose it beyond this machine


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # The page loads several API routes at once; one slow request should not stall the rest.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002  (the stdlib's signature)
        pass  # the page polls every few seconds; a line per request would bury the URL


def dashboard_server(storage: str, port: int, allow_edits: bool = False) -> WSGIServer:
    """A server for ``storage`` bound to LOOPBACK:``port`` (0 picks a free port), not yet serving. It answers only
    requests addressed to that address and port, and only reads unless ``allow_edits`` (see dashboard_guard)."""
    try:
        import optuna_dashboard
    except ImportError:
        raise ColasearchError("the dashboard needs the optional extra: pip install 'colasearch[dashboard]'") from None
    from colasearch.cli.dashboard_guard import guarded
    from colasearch.engine.storage import open_storage

    if "://" not in storage and not Path(storage).is_file():
        raise ColasearchError(f"study journal {storage} not found")  # opening it would create an empty one
    application = optuna_dashboard.wsgi(open_storage(storage))
    try:
        server = make_server(LOOPBACK, port, application, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    except OSError as error:
        raise ColasearchError(f"cannot listen on {LOOPBACK}:{port}: {error.strerror or error}") from None
    # The guard needs the real port, which port 0 only gives once the socket is bound.
    server.set_app(guarded(application, LOOPBACK, server.server_port, allow_edits=allow_edits))
    return server


@app.command()
def dashboard(
    storage: Annotated[str, typer.Argument(help="Study journal (runs/X.journal) or RDB URL (sqlite:///runs.db).")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one.")] = 8080,
    allow_edits: Annotated[bool, typer.Option("--allow-edits", help="Let the page rename, delete and annotate studies "
                                                                    "(any local user can, too, while it runs).")] = False,
) -> None:
    """Serve a study in optuna-dashboard on 127.0.0.1 until Ctrl-C: trials with quality, speedup and schedule.

    Read-only unless --allow-edits; a request addressed to a host other than 127.0.0.1 or localhost at its port
    is refused."""
    server = dashboard_server(storage, port, allow_edits=allow_edits)
    mode = "edits allowed" if allow_edits else "read-only"
    print(f"optuna-dashboard: http://{LOOPBACK}:{server.server_port}/dashboard ({mode}; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
