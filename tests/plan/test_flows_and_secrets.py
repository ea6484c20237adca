"""Issue 14's new keys: flows set endpoint rates (the staging file reproduces the seed's 7839 / 588 / 588),
scenarios, [target.auth], ${NAME} references, the test-data budget; every bad key named with its file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from capacity.core.errors import ExperimentError
from capacity.plan.budget import record_budget, worst_case_rates
from capacity.plan.experiment import load_experiment, parse_experiment
from capacity.plan.production import scenario_rpm
from capacity.plan.secrets import REDACTOR, expand, redact
from capacity.plan.target import live_target
from tests.conftest import REPO, Cli, run_cli

STAGING = REPO / "experiments" / "clinician-workflow-staging.toml"


def base() -> dict[str, Any]:
    return {
        "name": "t",
        "target": {"base_url": "http://127.0.0.1:8080"},
        "workload": {
            "endpoints": [
                {"name": "get", "path": "/g"},
                {"name": "checkin", "method": "POST", "path": "/c", "consumes": True},
            ],
            "flows": [
                {"name": "visit", "per_hour": 6000, "steps": [{"endpoint": "get", "count": 3}, {"endpoint": "checkin"}]}
            ],
            "test_data": {"source": "sandbox", "records": 1000},
        },
        "metrics": {"source": "none"},
    }


def test_staging_flows_reproduce_the_seed_profile() -> None:
    exp = load_experiment(STAGING)
    rpm = {e.name: e.rpm for e in exp.workload.endpoints}
    assert rpm["demographics_status_get"] + rpm["demographics_status_set"] == 7839  # type: ignore[operator]
    assert rpm["appointment_summary"] == 588 and rpm["appointment_checkin"] == 588
    assert sum(rpm.values()) == 9015  # type: ignore[arg-type]


def test_staging_scenarios_in_the_seed_terms() -> None:
    exp = load_experiment(STAGING)
    sc = {s.name: scenario_rpm(s, exp.workload) for s in exp.production.scenarios}
    assert sc["check-in peak"] == {
        "demographics_status_get": 588,
        "appointment_summary": 588,
        "appointment_checkin": 588,
    }
    assert sum(sc["pre-check-in reminders"].values()) == 3 * 2417  # type: ignore[union-attr]
    burst = sc["reminder burst during check-in peak"]
    assert burst is not None and burst["demographics_status_set"] == round(290000 / 60)
    assert exp.production.growth == 1.0 and exp.production.unmodelled_share > 0


def test_dry_run_prints_per_endpoint_rates_budget_and_assumptions(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPACITY_TARGET", "https://staging.example.invalid")
    r = cli("search", str(STAGING), "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "5,422 /min at 1x" in out and "2,417 /min at 1x" in out
    # the per-endpoint split, then the path totals printed as such (issue 24): 7,839 / 588 / 588
    assert out.count("588 /min at 1x") == 4
    paths = out.split("per path (methods added up):")[1]
    assert "7,839 /min at 1x  /api/v1/vista-sites/{sta3n}/patient_demographics_status  (" in paths
    assert "588 /min at 1x  /api/v1/vista-sites/{sta3n}/appointments/{ien}/summary" in paths
    assert "588 /min at 1x  /api/v1/vista-sites/{sta3n}/appointments/{ien}/checkins" in paths
    assert "2,417/min sessions" in out and "588/min sessions" in out
    assert "1x profile: 9,015 requests/min" in out
    assert "test data: worst case" in out and "appointment_checkin" in out
    assert "assumption: flow pre-check-in" in out
    monkeypatch.delenv("CAPACITY_TARGET")
    j = json.loads(cli("search", str(STAGING), "--dry-run", "--json").stdout)
    assert {e["name"]: e["rpm_1x"] for e in j["endpoints"]}["appointment_checkin"] == 588
    assert [round(p["rpm_1x"]) for p in j["paths"]] == [7839, 588, 588]
    assert j["test_data"]["needed"] > 10_000


@pytest.mark.parametrize(
    ("change", "key", "word"),
    [
        (lambda d: d["workload"]["flows"][0]["steps"].append({"endpoint": "nope"}), "workload", "'nope'"),
        (
            lambda d: d["workload"]["flows"][0]["steps"][0].update(cuont=2),
            "workload.flows.0.steps.0.cuont",
            "unknown key",
        ),
        (lambda d: d["workload"]["flows"][0].update(per_hour="lots"), "workload.flows.0.per_hour", "number"),
        (lambda d: d["workload"]["endpoints"][0].update(rpm=7), "workload", "flows give 300"),
        (lambda d: d["workload"]["endpoints"][0].update(weight=2), "workload", "weight"),
        (lambda d: d["workload"]["endpoints"].append({"name": "x", "path": "/x"}), "workload", "no rpm or weight"),
        (
            lambda d: d["workload"]["endpoints"][0].update(expect_status=[99]),
            "workload.endpoints.0.expect_status.0",
            "100",
        ),
        (lambda d: d["target"].update(auth={"command": "x", "format": "Bearer"}), "target.auth.format", "{token}"),
        (lambda d: d["target"].update(auth={"command": "x", "refesh_s": 5}), "target.auth.refesh_s", "unknown key"),
        (lambda d: d["target"].update(auth={"refresh_s": 5}), "target.auth.command", "missing"),
        (
            lambda d: d.update(production={"scenarios": [{"name": "s", "flows": {"vist": {"per_hour": 1}}}]}),
            "production.scenarios",
            "'vist'",
        ),
        (
            lambda d: d.update(production={"scenarios": [{"name": "s", "flows": {"visit": {}}}]}),
            "production.scenarios.0.flows.visit",
            "exactly one",
        ),
        (
            lambda d: d.update(production={"scenarios": [{"name": "s", "rps": 3, "rpm": {"get": 1}}]}),
            "production.scenarios.0",
            "exactly one",
        ),
        (
            lambda d: d.update(production={"unmodelled_share": -0.1}),
            "production.unmodelled_share",
            "greater than or equal",
        ),
        (lambda d: d["target"].update(base_url="ftp://${HOST}"), "target.base_url", "http(s)"),
    ],
)
def test_new_keys_are_validated_naming_the_key(change: Any, key: str, word: str) -> None:
    d = base()
    change(d)
    with pytest.raises(ExperimentError) as ei:
        parse_experiment(d, source="x.toml")
    msg = str(ei.value)
    assert msg.startswith(f"x.toml, key '{key}'"), msg
    assert word in msg, msg


def test_bad_flow_through_the_cli_is_one_line_exit_2(tmp_path: Path, cli: Cli) -> None:
    d = base()
    d["workload"]["flows"][0]["steps"][0]["endpoint"] = "nope"
    p = tmp_path / "bad.toml"
    p.write_text(tomli_w.dumps(d))
    r = cli("search", str(p), "--dry-run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(p) in r.stderr and "flow 'visit' step 1" in r.stderr


def test_env_references_are_kept_in_the_model_and_filled_at_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAP_T_HOST", "127.0.0.1")
    monkeypatch.setenv("CAP_T_KEY", "zz-secret-value-1")
    d = base()
    d["target"] = {
        "base_url": "http://${CAP_T_HOST}:8080",
        "headers": {"X-Key": "k=${CAP_T_KEY}"},
        "allowed_hosts": ["${CAP_T_HOST}"],
        "auth": {"command": "echo ${CAP_T_KEY}"},
    }
    exp = parse_experiment(d, source="x.toml")
    assert exp.target.headers == {"X-Key": "k=${CAP_T_KEY}"}
    assert "zz-secret" not in exp.model_dump_json()
    live = live_target(exp.target, exp.target.base_url, file="x.toml")
    assert live.base_url == "http://127.0.0.1:8080" and live.headers == {"X-Key": "k=zz-secret-value-1"}
    assert (
        live.allowed_hosts == ("127.0.0.1",) and live.auth is not None and live.auth.command == "echo zz-secret-value-1"
    )
    assert redact("got zz-secret-value-1 back") == "got *** back"
    monkeypatch.delenv("CAP_T_KEY")
    with pytest.raises(ExperimentError, match=r"x.toml, key 'target.headers.X-Key': environment variable CAP_T_KEY"):
        live_target(exp.target, exp.target.base_url, file="x.toml")
    REDACTOR.clear()


def test_expand_leaves_text_without_references_alone() -> None:
    assert expand("plain $HOME text", env={}) == "plain $HOME text"


def test_budget_counts_the_worst_case_and_finds_the_max_rps_that_fits() -> None:
    d = base()
    d["stages"] = {
        "strategy": "linear",
        "start_rps": 10,
        "step_rps": 10,
        "max_rps": 30,
        "stage_seconds": 10,
        "warmup_seconds": 2,
        "max_stages": 5,
    }
    exp = parse_experiment(d, source="x.toml")
    assert worst_case_rates(exp.stages) == [30, 20, 10]
    b = record_budget(exp, available=1000)
    # checkin is 1 of every 4 requests (3 gets + 1 checkin per visit): (10+20+30) x 10 s x 0.25 + 1 smoke
    assert b.needed == 151 and not b.short
    short = record_budget(exp, available=100)
    assert short.short and short.fitting_max_rps is not None
    fit = exp.stages.model_copy(update={"max_rps": short.fitting_max_rps})
    assert record_budget(exp.model_copy(update={"stages": fit}), available=100).needed <= 100
    assert "51 short" in short.text() and f"max_rps {short.fitting_max_rps:g} fits" in short.text()


def test_short_test_data_is_exit_2_before_the_run(tmp_path: Path, cli: Cli) -> None:
    d = base()
    d["workload"]["test_data"] = {"source": "sandbox", "records": 20}
    d["stages"] = {
        "strategy": "linear",
        "start_rps": 10,
        "step_rps": 10,
        "max_rps": 30,
        "stage_seconds": 10,
        "warmup_seconds": 2,
        "max_stages": 5,
    }
    p = tmp_path / "short.toml"
    p.write_text(tomli_w.dumps(d))
    r = cli("search", str(p), "--out", str(tmp_path / "results"))
    assert r.returncode == 2, r.stderr
    assert "worst case 151 records" in r.stderr and "available 20" in r.stderr and "fits" in r.stderr
    assert not (tmp_path / "results").exists()


def test_cli_locustfile_path_is_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "lf.py").write_text(
        "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"
        "    @task\n    def t(self):\n        self.client.get('/')\n"
    )
    d = base()
    d["target"]["base_url"] = "http://127.0.0.1:9"  # nothing listens: the run gets as far as the preflight
    p = tmp_path / "sub"
    p.mkdir()
    (p / "e.toml").write_text(tomli_w.dumps(d))
    r = run_cli("search", "sub/e.toml", "--locustfile", "lf.py", "--out", "results", cwd=tmp_path)
    assert "locustfile not found" not in r.stderr, r.stderr
    assert r.returncode == 2 and "unreachable" in r.stderr


def test_staging_file_toml_parses_as_written() -> None:
    data = tomllib.loads(STAGING.read_text())
    assert "peak_rpm" not in data["production"]  # the 1x peak comes from the flows
