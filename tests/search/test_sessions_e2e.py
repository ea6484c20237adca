"""Issue 24 end to end: the staging flows run as sessions against the Python sandbox; tokens per session.

The sandbox records which calls each appointment saw (``GET /sandbox/journeys``): every check-in must
be *whole* (its appointment's summary came before it for the same patient, and that patient's status
was read before the summary), which three unrelated requests could not guarantee. The stage JSON's
per-flow table and the per-endpoint request counts are checked against the plan.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from capacity.sandbox import SandboxConfig, run_sandbox
from tests.conftest import run_cli
from tests.load.auth_target import API_KEY, BearerTarget, runs, token_command
from tests.sandbox.conftest import http
from tests.search.test_auth_e2e import write_experiment

RECORDS = 3000


def experiment(url: str, tmp: Path) -> Path:
    think = {"uniform": [0.05, 0.25]}
    exp: dict[str, Any] = {
        "name": "sessions-e2e",
        "target": {"base_url": url, "timeout_s": 5},
        "workload": {
            "flows": [
                {
                    "name": "pre-check-in",
                    "per_hour": 145000,
                    "steps": [
                        {"endpoint": "demographics_status_get", "count": 2, "think_s": think},
                        {"endpoint": "demographics_status_set", "think_s": think},
                    ],
                },
                {
                    "name": "check-in",
                    "per_hour": 35260,
                    "steps": [
                        {"endpoint": "demographics_status_get", "extract": {"patient": "$.data.id"}},
                        {"endpoint": "appointment_summary", "think_s": think},
                        {"endpoint": "appointment_checkin", "think_s": think},
                    ],
                },
            ],
            "endpoints": [
                {
                    "name": "demographics_status_get",
                    "path": "/api/v1/vista-sites/{sta3n}/patient_demographics_status?patientDfn={dfn}",
                },
                {
                    "name": "demographics_status_set",
                    "method": "POST",
                    "path": "/api/v1/vista-sites/{sta3n}/patient_demographics_status",
                    "body": '{"patientDfn": "{dfn}", "demographicsConfirmationPayload": {}}',
                },
                {
                    "name": "appointment_summary",
                    "method": "POST",
                    "path": "/api/v1/vista-sites/{sta3n}/appointments/{ien}/summary",
                    # the patient comes from the status answer: extracted, not from the record
                    "body": '{"appointmentIen": "{ien}", "patientDfn": "{patient}"}',
                },
                {
                    "name": "appointment_checkin",
                    "method": "POST",
                    "path": "/api/v1/vista-sites/{sta3n}/appointments/{ien}/checkins",
                    "body": '{"appointmentIen": "{ien}", "patientDfn": "{dfn}"}',
                    "consumes": True,
                },
            ],
            "test_data": {"source": "sandbox", "seed": 42, "records": RECORDS},
        },
        "stages": {
            "strategy": "linear",
            "start_rps": 30,
            "step_rps": 30,
            "max_rps": 60,
            "stage_seconds": 5,
            "warmup_seconds": 1,
            "max_stages": 2,
            "recovery_timeout_s": 5,
            "arrival": "uniform",
        },
        "guards": {
            "slo_p95_ms": 2000,
            "max_error_ratio": 0.05,
            "min_goodput_ratio": 0.5,
            "flows": {"check-in": {"max_session_p95_s": 5, "max_failed_ratio": 0.05}},
        },
        "metrics": {"source": "none"},
    }
    path = tmp / "sessions.toml"
    path.write_text(tomli_w.dumps(exp), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_every_checkin_is_one_session_about_one_appointment(tmp_path: Path, workers: int) -> None:
    cfg = SandboxConfig(app_tasks=2, threads=8, service_ms=5, records=RECORDS, seed=42, sidekiq_tasks=1)
    with run_sandbox(cfg) as sb:
        exp = experiment(sb.base_url, tmp_path)
        out = tmp_path / "results"
        r = run_cli("search", str(exp), "--out", str(out), "--workers", str(workers), "--no-report", "--json")
        assert r.returncode == 0, r.stderr
        status, journeys = http(sb.base_url, "GET", "/sandbox/journeys")
    assert status == 200
    # the smoke's check-in is one (it sends the three calls in flow order too); the run's are the rest
    assert journeys["checkins"] > 20, journeys
    assert journeys["broken"] == [] and journeys["whole"] == journeys["checkins"], journeys
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    stages = [json.loads(p.read_text()) for p in sorted((run_dir / "stages").glob("stage-*.json"))]
    assert len(stages) == 2
    for st in stages:
        flows = st["flows"]
        assert set(flows) == {"pre-check-in", "check-in"}
        ci, pre = flows["check-in"], flows["pre-check-in"]
        assert ci["failed"] == 0 and pre["failed"] == 0, flows
        assert ci["completed"] > 0 and ci["completed"] + ci["unfinished"] == ci["started"]
        assert ci["p50_s"] is not None and 0.1 <= ci["p50_s"] <= ci["p95_s"] < 5
        # sessions started against plan: 588 / (9015 / 60) of the request rate are check-ins
        plan = st["target_rps"] * 588 / 9015
        assert ci["planned_per_s"] == pytest.approx(plan, rel=1e-3)
        assert ci["started_per_s"] == pytest.approx(plan, rel=0.7)  # ~8 sessions: exact shares over 128 arrivals
        eps = st["endpoints"]
        # each check-in session: one status read, one summary, one check-in; pre-check-ins three status calls
        assert (
            abs(eps["appointment_summary"]["requests"] - eps["appointment_checkin"]["requests"]) <= ci["started"] * 0.1
        )
        assert eps["demographics_status_get"]["requests"] > eps["demographics_status_set"]["requests"]
    assert (run_dir / "flows.parquet").is_file() or (run_dir / "flows.csv").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_session_scope_runs_the_token_command_once_per_session(tmp_path: Path, workers: int) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        path = write_experiment(tmp_path, srv.url, cmd)
        d = tomllib.loads(path.read_text(encoding="utf-8"))
        d["target"]["auth"].update(scope="session", session_fetches=3)
        path.write_text(tomli_w.dumps(d), encoding="utf-8")
        out = tmp_path / "results"
        r = run_cli(
            "search",
            str(path),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--no-report",
            env={"CAP_TEST_API_KEY": API_KEY},
        )
    assert r.returncode == 0, r.stderr
    assert srv.status[401] == 0 and srv.status[403] == 0
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    stages = [json.loads(p.read_text()) for p in sorted((run_dir / "stages").glob("stage-*.json"))]
    started = sum(f["started"] + f["dropped"] for st in stages for f in st["flows"].values())
    # one run token (smoke and probes) plus one per session: the warm-up's sessions are not in the
    # stages' windows, so at least as many fetches as sessions counted there
    session_tokens = [t for t in srv.tokens if t != "s3cr3t-tok-1"]
    assert runs(count) >= started + 1
    assert len(session_tokens) >= started > 20
    # each token serves one session: at most its four calls (status x3, check-in)
    assert max(srv.tokens[t] for t in session_tokens) <= 4
