"""Experiment files: the shipped ones load; every broken one gives exit 2 and one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.core.errors import ExperimentError
from capacity.plan.experiment import builtin_experiment_path, load_experiment
from tests.conftest import REPO, Cli, run_cli

BROKEN = Path(__file__).parent / "broken"

# file -> (the key the message must name, a word the message must contain)
EXPECTED: dict[str, tuple[str, str]] = {
    "unknown_key.toml": ("stages.max_rsp", "unknown key"),
    "wrong_type.toml": ("stages.max_rps", "number"),
    "missing_target.toml": ("target", "missing"),
    "negative_rate.toml": ("stages.start_rps", "greater than 0"),
    "inverted_rates.toml": ("stages", "above max_rps"),
    "invalid_url.toml": ("target.base_url", "http(s) URL"),
    "invalid_url2.toml": ("target.base_url", "http(s) URL"),
    "not_toml.toml": ("", "not valid TOML"),
    "ratio_over_one.toml": ("guards.max_error_ratio", "less than or equal to 1"),
    "bad_method.toml": ("workload.endpoints.0.method", "GET"),
    "path_no_slash.toml": ("workload.endpoints.0.path", "start with '/'"),
    "no_endpoints.toml": ("workload", "at least one"),
    "warmup_too_long.toml": ("stages", "shorter than"),
    "csv_without_path.toml": ("workload.test_data", "needs 'path'"),
    "unknown_strategy.toml": ("stages.strategy", "adaptive"),
    "unknown_metrics_source.toml": ("metrics.source", "datadog"),
    "duplicate_endpoint.toml": ("workload", "unique"),
    "utilisation_over_one.toml": ("production.target_utilisation", "less than or equal to 1"),
}


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.toml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_names_file_and_key(name: str) -> None:
    key, word = EXPECTED[name]
    with pytest.raises(ExperimentError) as err:
        load_experiment(BROKEN / name)
    msg = str(err.value)
    assert "\n" not in msg
    assert name in msg
    if key:
        assert f"key '{key}'" in msg
    assert word in msg


@pytest.mark.parametrize("name", ["unknown_key.toml", "inverted_rates.toml", "not_toml.toml"])
def test_cli_exit_2_one_line(name: str, cli: Cli) -> None:
    proc = cli("search", str(BROKEN / name), "--dry-run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("capacity: error:") and name in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_missing_file() -> None:
    proc = run_cli("search", "nope/missing.toml", "--dry-run")
    assert proc.returncode == 2
    assert "missing.toml" in proc.stderr and "no such experiment file" in proc.stderr


def test_shipped_experiments_load_and_default_matches_packaged_copy() -> None:
    sandbox = load_experiment(REPO / "experiments" / "sandbox.toml")
    staging = load_experiment(REPO / "experiments" / "clinician-workflow-staging.toml")
    assert sandbox.target.is_sandbox
    assert (REPO / "experiments" / "sandbox.toml").read_text() == builtin_experiment_path().read_text()
    rpm = {e.name: e.rpm for e in staging.workload.endpoints}
    # the seed's 7839 demographics calls are GET + POST, from the flows (issue 14)
    assert rpm == {
        "demographics_status_get": 5422,
        "demographics_status_set": 2417,
        "appointment_summary": 588,
        "appointment_checkin": 588,
    }
    assert staging.metrics.site == "ddog-gov.com"
    assert staging.production.cpu_target == 0.6 and staging.production.throughput_headroom == 0.2


def test_capacity_target_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPACITY_TARGET", "http://127.0.0.1:9999")
    exp = load_experiment(REPO / "experiments" / "clinician-workflow-staging.toml")
    assert exp.target.base_url == "http://127.0.0.1:9999"


def test_flag_errors_name_the_flag(cli: Cli) -> None:
    proc = cli("search", "--max-rps", "-3", "--dry-run")
    assert proc.returncode == 2
    assert "command-line flags" in proc.stderr and "stages.max_rps" in proc.stderr
    proc = cli("search", "--target", "http://127.0.0.1:9", "--endpoint", "GET", "--dry-run")
    assert proc.returncode == 2 and "--endpoint" in proc.stderr
    proc = cli("search", "--max-rps", "abc")
    assert proc.returncode == 2 and "max-rps" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_dry_run_sends_nothing_and_prints_plan(cli: Cli) -> None:
    # port 9 (discard) on loopback: nothing listens; a dry run must not even try to connect
    proc = cli(
        "search",
        "--target",
        "http://127.0.0.1:9",
        "--endpoint",
        "GET /x",
        "--max-rps",
        "100",
        "--start-rps",
        "10",
        "--growth",
        "2",
        "--dry-run",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    import json

    plan = json.loads(proc.stdout)
    assert plan["ramp_rates"] == [10.0, 20.0, 40.0, 80.0, 100.0]
    assert plan["max_rps"] == 100
    assert plan["worst_case_s"] > 0
