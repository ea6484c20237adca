"""Late metrics filled into a stored run (API and CLI); keys never reach logs, output or files."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from capacity.core.errors import CapacityError
from capacity.observe import build_source
from capacity.search.backfill import backfill_run
from capacity.store import RunStore, load_run
from tests.conftest import run_cli
from tests.helpers import make_stage_result
from tests.observe.conftest import API_KEY, APP_KEY, make_exp, past_window, populate
from tests.observe.fake_datadog import FakeDatadog, Fault

LATE = {"queries": {"extra": {"running_tasks": "avg:aws.ecs.service.running{clustername:staging}"}}}


def _run_with_late_metric(fake: FakeDatadog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One stored stage whose CloudWatch metric had not arrived when the stage ended."""
    w = past_window(ago=3)
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.add(
        "aws.ecs.service.running",
        ["clustername:staging", "servicename:cw-app"],
        [(t, 2.0) for t in range(int(w.start_s) - 30, int(w.end_s) + 10)],
    )
    fake.lag_s = {"aws.": 3600}
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    exp = make_exp(fake.url, **LATE)
    src = build_source(exp)
    assert src is not None
    sm = src.fetch_stage(w)
    assert sm.completeness["running_tasks"] == 0.0
    store = RunStore.create(tmp_path, exp)
    result = make_stage_result(
        target_rps=20,
        metrics=sm.aggregates,
        metrics_completeness=sm.completeness,
        started_at=w.start,
        measure_from=w.start,
        ended_at=w.end,
    )
    store.write_stage(result, [], sm.frame)
    fake.lag_s = {}  # ... and now CloudWatch has caught up
    return store.path


def test_backfill_fills_late_metrics_into_the_store(
    fake: FakeDatadog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _run_with_late_metric(fake, tmp_path, monkeypatch)
    report = backfill_run(path)
    assert report.checked == [0] and report.updated == [0] and report.calls == 1
    assert report.after[0] == 1.0 > report.before[0]
    run = load_run(path)
    assert run.stages.loc[0, "m_running_tasks"] == pytest.approx(2.0)
    assert set(run.metrics["metric"]) >= {"running_tasks", "cpu_pct"}
    assert backfill_run(path).checked == []  # complete now: nothing left to do


@pytest.mark.slow  # three CLI subprocesses
def test_backfill_cli_and_no_key_anywhere(fake: FakeDatadog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _run_with_late_metric(fake, tmp_path, monkeypatch)
    env = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY, "CAPACITY_DATADOG_URL": fake.url}
    done = run_cli("metrics", "backfill", str(path), "--json", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["updated"] == [0]
    assert fake.requests[-1]["headers"]["DD-API-KEY"] == API_KEY  # the keys were really sent...
    for f in path.rglob("*"):  # ... and written nowhere
        if f.is_file():
            data = f.read_bytes()
            assert API_KEY.encode() not in data and APP_KEY.encode() not in data, f
    assert API_KEY not in done.stdout + done.stderr and APP_KEY not in done.stdout + done.stderr
    bad = run_cli("metrics", "backfill", str(tmp_path / "nope"), env=env, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no such run folder" in bad.stderr
    nokey = run_cli(
        "metrics", "check", env={"DD_API_KEY": "", "CAPACITY_DATADOG_URL": fake.url}, cwd=tmp_path, timeout=60
    )
    assert nokey.returncode == 2 and "DD_API_KEY is not set" in nokey.stderr and "Traceback" not in nokey.stderr


def test_keys_never_logged_even_at_debug(
    fake: FakeDatadog,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, the client's, urllib3's
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    src = build_source(make_exp(fake.url, events=True))
    assert src is not None
    src.retry = replace(src.retry, backoff_s=0.01)  # type: ignore[attr-defined]
    messages: list[str] = []
    src.preflight()
    fake.fail("/api/v1/query", Fault(429, {"X-RateLimit-Reset": "0"}), Fault(500), Fault(action="malformed"))
    sm = src.fetch_stage(w, wait=False)
    messages += sm.warnings
    src.post_event("capacity: run start", "run r1", ["run_id:r1"])
    fake.fail("/api/v1/validate", Fault(403, body={"errors": ["Forbidden"]}))
    with pytest.raises(CapacityError) as err:
        src.preflight()
    messages.append(str(err.value))
    src.close()
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err + "\n".join(messages)
    assert "retry" in caplog.text  # the retries were logged...
    assert API_KEY not in text and APP_KEY not in text  # ...without the keys
    assert all(r["headers"].get("DD-APPLICATION-KEY") == APP_KEY for r in fake.requests if r["path"] == "/api/v1/query")


def test_backfill_refuses_runs_without_metrics(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, make_exp("http://127.0.0.1:9", source="none"))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    store.write_stage(
        make_stage_result(
            target_rps=1,
            p50_ms=1,
            p95_ms=1,
            p99_ms=1,
            measure_from=t,
            ended_at=t,
        ),
        [],
    )
    with pytest.raises(CapacityError, match=r"metrics\.source = 'none'"):
        backfill_run(store.path)
