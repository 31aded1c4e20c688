"""``colasearch dashboard`` serves a finished study; its HTTP API returns the journal's trials."""

import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIServer

import pytest

from colasearch.cli.app import main
from colasearch.cli.dashboard_commands import dashboard_server
from colasearch.results import EvalResult
from colasearch.schedule import Schedule
from colasearch.engine.storage import RunStore

pytest.importorskip("optuna_dashboard", reason="needs the dashboard extra: pip install 'colasearch[dashboard]'")

CHAINS = ([0, 1, 2, 3], [0, 1, 3], [0, {"layer": 2, "run": "attn"}, 3])


def finished_study(journal):
    store = RunStore(journal, "colasearch|tiny|words|mcts|constrained|target=1.2", ["maximize", "maximize"])
    for index, chain in enumerate(CHAINS):
        schedule = Schedule.from_layers(chain)
        result = EvalResult(schedule.key, "words", "search", {"acc": 0.9 - 0.2 * index, "acc_norm": 0.5}, 1.0 + 0.3 * index)
        store.add(schedule, result, [result.quality["acc"], result.ideal_speedup], True)
    return store


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_dashboard_serves_the_journal_trials_on_loopback(tmp_path):
    journal = tmp_path / "run.journal"
    expected = finished_study(journal).study.trials
    server = dashboard_server(str(journal), port=0)  # 0: a free port, chosen by the system
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        studies = get_json(f"http://{host}:{port}/api/studies")["study_summaries"]
        assert [study["study_name"] for study in studies] == ["colasearch|tiny|words|mcts|constrained|target=1.2"]
        trials = get_json(f"http://{host}:{port}/api/studies/{studies[0]['study_id']}")["trials"]
        assert len(trials) == len(expected) == len(CHAINS)
        for served, stored in zip(sorted(trials, key=lambda trial: trial["number"]), expected):
            attrs = {attr["key"]: attr["value"] for attr in served["user_attrs"]}
            assert served["state"] == "Complete" and served["values"] == pytest.approx(stored.values)
            assert attrs["chain"] == stored.user_attrs["chain"]
            assert float(attrs["quality_acc"]) == pytest.approx(stored.user_attrs["result"]["quality"]["acc"])
            assert float(attrs["ideal_speedup"]) == pytest.approx(stored.user_attrs["ideal_speedup"])
            assert json.loads(attrs["schedule"])["layers"] == stored.user_attrs["schedule"]["layers"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_command_prints_one_url_and_stops_on_ctrl_c(tmp_path, monkeypatch, capsys):
    journal = tmp_path / "run.journal"
    finished_study(journal)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(WSGIServer, "serve_forever", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", str(journal), "--port", "0"])
    assert exit_info.value.code == 0  # Ctrl-C is the way out, not an error
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "http://127.0.0.1:" in lines[0] and "Ctrl-C" in lines[0]


def test_a_missing_journal_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", str(tmp_path / "none.journal"), "--port", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not found" in err and not (tmp_path / "none.journal").exists()
