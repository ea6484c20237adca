"""The nightly gate: baseline choice, verdict exit codes, report and comparison on disk, Datadog event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary
from capacity.plan.experiment import Experiment
from capacity.search import nightly as N
from capacity.store import load_run
from tests.conftest import Cli
from tests.report.conftest import experiment, make_run

DAY1 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

EXPERIMENT_TOML = """
name = "nightly-test"
[target]
base_url = "http://127.0.0.1:9"
[[workload.endpoints]]
name = "status"
method = "POST"
path = "/status"
[metrics]
source = "none"
"""


def fake_search(capacity: float | None, calls: list[Experiment] | None = None) -> N.SearchFn:
    """Stands in for run_search: writes a synthetic run (newer than any baseline) and returns its summary."""

    def search(exp: Experiment, root: Path, json_mode: bool, console: Console | None) -> RunSummary:
        if calls is not None:
            calls.append(exp)
        path = make_run(root, capacity, name=exp.name, started=DAY1 + timedelta(days=1))
        (path / "report.html").unlink(missing_ok=True)
        summary = load_run(path).summary
        assert summary is not None
        return summary

    return search


@pytest.fixture(autouse=True)
def no_datadog_keys_and_quick_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    # the plots are tested in test_report_html; here a placeholder PNG keeps each night fast
    from capacity.report import writer

    monkeypatch.setattr(
        writer,
        "render_plots",
        lambda c: dict.fromkeys(("goodput", "latency", "resources", "timeline", "search-path"), b"\x89PNG\r\n\x1a\n"),
    )


def test_regression_against_last_run_exits_1_and_writes_report(tmp_path: Path) -> None:
    base = make_run(tmp_path, 120.0, started=DAY1)
    make_run(tmp_path, 500.0, name="another-experiment", started=DAY1 + timedelta(hours=1))  # never a baseline
    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(90.0))
    assert (out.verdict, out.exit_code) == ("regression", 1)
    assert out.baseline_dir == base
    assert out.report is not None and out.report.is_file() and out.report.parent == out.run_dir
    saved = json.loads((out.run_dir / "comparison.json").read_text())
    assert saved["verdict"] == "regression" and saved["baseline_dir"] == str(base)
    assert saved["comparison"]["figures"]["slo_capacity"]["change_pct"] == pytest.approx(-25.0)


def test_equal_baseline_passes_with_exit_0(tmp_path: Path) -> None:
    make_run(tmp_path, 120.0, started=DAY1)
    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(120.0))
    assert (out.verdict, out.exit_code) == ("ok", 0)


def test_no_previous_run_is_inconclusive_exit_3(tmp_path: Path) -> None:
    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(120.0))
    assert (out.verdict, out.exit_code) == ("inconclusive", 3)
    assert "no previous run of experiment 'nightly-test'" in out.reason


def test_undetermined_capacity_is_inconclusive(tmp_path: Path) -> None:
    make_run(tmp_path, 120.0, started=DAY1)
    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(None))
    assert (out.verdict, out.exit_code) == ("inconclusive", 3)


def test_explicit_baseline_folder_and_bad_ones(tmp_path: Path) -> None:
    old = make_run(tmp_path, 200.0, started=DAY1 - timedelta(days=5))
    make_run(tmp_path, 120.0, started=DAY1)  # the newest, but not the one asked for
    out = N.run_nightly(experiment(), baseline=str(old), results_root=tmp_path, search=fake_search(120.0))
    assert out.baseline_dir == old and out.verdict == "regression"
    calls: list[Experiment] = []
    with pytest.raises(CapacityError, match="no such run folder"):
        N.run_nightly(
            experiment(),
            baseline=str(tmp_path / "nope"),
            results_root=tmp_path,
            search=fake_search(1.0, calls),
        )
    unfinished = make_run(tmp_path / "other", 100.0, with_summary=False)
    with pytest.raises(CapacityError, match=r"no summary\.json"):
        N.run_nightly(experiment(), baseline=str(unfinished), results_root=tmp_path, search=fake_search(1.0, calls))
    assert calls == []  # bad input is refused before any load is sent


def test_datadog_event_only_when_keys_are_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path, 120.0, started=DAY1)
    posted: list[tuple[str, str, list[str]]] = []

    def post(exp: Experiment, title: str, text: str, tags: list[str]) -> str:
        posted.append((title, text, tags))
        return "evt-1"

    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(90.0), post_event=post)
    assert posted == [] and out.event_id is None
    monkeypatch.setenv("DD_API_KEY", "k-secret-1")
    monkeypatch.setenv("DD_APP_KEY", "k-secret-2")
    out = N.run_nightly(
        experiment(),
        baseline=str(out.baseline_dir),
        results_root=tmp_path,
        search=fake_search(90.0),
        post_event=post,
    )
    assert out.event_id == "evt-1"
    title, text, tags = posted[0]
    assert title == "capacity nightly: nightly-test: regression"
    assert "verdict:regression" in tags and f"run_id:{out.run_id}" in tags
    assert "k-secret" not in title + text + " ".join(tags)
    assert "k-secret" not in (out.run_dir / "comparison.json").read_text()

    def broken(*_: Any) -> str:
        raise RuntimeError("boom")

    out = N.run_nightly(experiment(), results_root=tmp_path, search=fake_search(120.0), post_event=broken)
    assert out.event_error == "RuntimeError" and out.exit_code == 0  # the event never changes the verdict


def test_nightly_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    exp_file = tmp_path / "nightly.toml"
    exp_file.write_text(EXPERIMENT_TOML)
    root = tmp_path / "results"
    calls: list[Experiment] = []
    monkeypatch.setattr(N, "default_search", fake_search(120.0, calls))
    code, out, _ = cli("nightly", str(exp_file), "--results", str(root))
    assert code == 3 and "inconclusive" in out  # first night: nothing to compare with
    assert calls[0].name == "nightly-test"
    code, out, _ = cli("nightly", str(exp_file), "--results", str(root), "--max-drop", "10")
    assert code == 0 and "verdict: ok" in out
    monkeypatch.setattr(N, "default_search", fake_search(90.0, calls))
    code, out, _ = cli("nightly", str(exp_file), "--results", str(root), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "regression" and data["exit_code"] == 1
    code, _, err = cli("nightly", str(exp_file), "--results", str(root), "--max-drop", "150")
    assert code == 2 and err.strip().count("\n") == 0 and "--max-drop 150" in err
    code, _, err = cli("nightly", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err and "Traceback" not in err
