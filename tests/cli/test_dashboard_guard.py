"""The dashboard answers only requests addressed to its own loopback port, and only reads unless --allow-edits.

A web page can point its own host name at 127.0.0.1 (DNS rebinding): the browser then sends that page's
Host. A local user can send any request. The tests call the served WSGI application directly.
"""

import io
import json
from wsgiref.simple_server import WSGIServer
from wsgiref.util import setup_testing_defaults

import pytest

from colasearch.cli.app import main
from colasearch.cli.dashboard_commands import dashboard_server
from colasearch.engine.storage import open_storage

pytest.importorskip("optuna_dashboard", reason="needs the dashboard extra: pip install 'colasearch[dashboard]'")

from tests.cli.test_dashboard import finished_study  # noqa: E402  (after the skip: it needs the extra's storage)


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "run.journal"
    finished_study(path)
    return path


@pytest.fixture
def served(journal):
    """(the served WSGI application, its port) for a dashboard of ``journal`` in its default mode."""
    server = dashboard_server(str(journal), port=0)
    try:
        yield server.get_app(), server.server_port
    finally:
        server.server_close()


def call(application, path, host, method="GET", body=None, origin=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": host}
    if host is None:
        del environ["HTTP_HOST"]
    if origin is not None:
        environ["HTTP_ORIGIN"] = origin
    data = b"" if body is None else json.dumps(body).encode()
    environ.update({"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/json"})
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, headers

    payload = b"".join(application(environ, start_response))
    return int(started["status"].split()[0]), payload


def study_names(journal):
    return [study.study_name for study in open_storage(str(journal)).get_all_studies()]


def test_the_bound_address_and_localhost_at_its_port_are_served(served):
    application, port = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, payload = call(application, "/api/studies", host)
        assert status == 200, host
        assert len(json.loads(payload)["study_summaries"]) == 1


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1", "127.0.0.1",
                                  "localhost", "0.0.0.0:{port}", "127.0.0.1:{port}.evil.example", None])
def test_a_request_for_another_host_is_refused(served, host):
    application, port = served
    status, payload = call(application, "/api/studies", None if host is None else host.format(port=port))
    assert status == 403
    assert b"study" not in payload  # nothing of the study leaks in the refusal


def test_the_default_is_read_only_renames_and_deletes_are_refused(served, journal):
    application, port = served
    host = f"127.0.0.1:{port}"
    before = study_names(journal)
    study_id = json.loads(call(application, "/api/studies", host)[1])["study_summaries"][0]["study_id"]
    assert call(application, f"/api/studies/{study_id}/rename", host, "POST", {"study_name": "renamed"})[0] == 405
    assert call(application, f"/api/studies/{study_id}", host, "DELETE")[0] == 405
    assert call(application, f"/api/studies/{study_id}/note", host, "PUT", {"version": 1, "body": "x"})[0] == 405
    assert call(application, "/api/studies", host, "POST", {"study_name": "new", "directions": ["minimize"]})[0] == 405
    assert call(application, f"/api/studies/{study_id}", host, "PATCH", {})[0] == 405
    assert study_names(journal) == before


def test_a_foreign_host_cannot_write_even_with_edits_allowed(journal):
    server = dashboard_server(str(journal), port=0, allow_edits=True)
    try:
        application, port = server.get_app(), server.server_port
        studies = json.loads(call(application, "/api/studies", f"127.0.0.1:{port}")[1])["study_summaries"]
        rename = f"/api/studies/{studies[0]['study_id']}/rename"
        assert call(application, rename, f"evil.example:{port}", "POST", {"study_name": "renamed"})[0] == 403
        # A page elsewhere posting to the real address (cross-site request forgery) carries its own Origin.
        assert call(application, rename, f"127.0.0.1:{port}", "POST", {"study_name": "renamed"},
                    origin="http://evil.example")[0] == 403
        assert study_names(journal) == [studies[0]["study_name"]]
        status, _ = call(application, rename, f"127.0.0.1:{port}", "POST", {"study_name": "renamed"},
                         origin=f"http://127.0.0.1:{port}")
        assert status == 201 and study_names(journal) == ["renamed"]
    finally:
        server.server_close()


def test_the_command_says_read_only_and_takes_allow_edits(journal, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(WSGIServer, "serve_forever", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", str(journal), "--port", "0"])
    assert exit_info.value.code == 0
    assert "read-only" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", str(journal), "--port", "0", "--allow-edits"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "read-only" not in out and "edits allowed" in out
