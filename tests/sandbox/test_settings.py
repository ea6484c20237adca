"""One sandbox settings model: the experiment file's [sandbox] and the CLI flags share fields, bounds and seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.core.errors import ExperimentError
from capacity.plan.experiment import parse_experiment
from capacity.plan.sandbox_settings import MAX_TASKS, SandboxSettings
from capacity.sandbox import SandboxConfig, SandboxConfigError
from capacity.sandbox.config import sandbox_config_for
from tests.conftest import Cli
from tests.helpers import experiment_data

REPO = Path(__file__).resolve().parents[2]


def _experiment(sandbox: dict[str, object], **test_data: object) -> dict[str, object]:
    data = experiment_data(builtin=True)  # experiments/sandbox.toml (a test holds them equal)
    data["sandbox"] = sandbox
    data["workload"]["test_data"] = {**data["workload"]["test_data"], **test_data}  # type: ignore[index]
    return data


def test_the_config_is_the_settings_plus_runtime_fields() -> None:
    assert issubclass(SandboxConfig, SandboxSettings)
    shared = set(SandboxSettings.model_fields)
    for name in shared:
        assert repr(SandboxConfig.model_fields[name]) == repr(SandboxSettings.model_fields[name])
    assert "seed" not in shared and "seed" in SandboxConfig.model_fields


@pytest.mark.parametrize("tasks", [MAX_TASKS, MAX_TASKS + 1])
def test_file_and_flags_accept_the_same_bounds(tasks: int) -> None:
    ok = tasks <= MAX_TASKS
    try:
        parse_experiment(_experiment({"app_tasks": tasks, "sidekiq_tasks": tasks}))
        file_ok = True
    except ExperimentError:
        file_ok = False
    try:
        SandboxConfig(app_tasks=tasks, sidekiq_tasks=tasks)
        flags_ok = True
    except SandboxConfigError:
        flags_ok = False
    assert file_ok == flags_ok == ok


def test_out_of_range_in_the_file_names_the_key() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(_experiment({"app_tasks": MAX_TASKS + 1}), source="x.toml")
    assert info.value.key == "sandbox.app_tasks"
    assert "\n" not in str(info.value) and str(MAX_TASKS) in str(info.value)


def test_a_cross_field_check_names_its_key_and_flag() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(_experiment({"service_ms": 1, "cpu_ms": 2}), source="x.toml")
    assert info.value.key == "sandbox.cpu_ms"
    with pytest.raises(SandboxConfigError, match=r"^sandbox cpu_ms \(--cpu-ms\): cpu_ms must be at most"):
        SandboxConfig(service_ms=1, cpu_ms=2)


def test_out_of_range_flag_is_one_line_naming_it_with_exit_2(cli: Cli) -> None:
    code, out, err = cli("sandbox", "--explain", "--app-tasks", str(MAX_TASKS + 1))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--app-tasks" in lines[0] and str(MAX_TASKS + 1) in lines[0]


def test_unknown_sandbox_key_is_refused() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(_experiment({"app_taks": 2}), source="x.toml")
    assert info.value.key == "sandbox.app_taks"
    with pytest.raises(SandboxConfigError, match="app_taks"):
        SandboxConfig(app_taks=2)


def test_the_one_seed_is_the_test_data_seed() -> None:
    with pytest.raises(ExperimentError, match=r"\[workload.test_data\] seed") as info:
        parse_experiment(_experiment({"seed": 3}), source="x.toml")
    assert info.value.key == "sandbox.seed"
    exp = parse_experiment(_experiment({"app_tasks": 3, "threads": 6, "backlog": 9}, seed=7, records=123))
    cfg = sandbox_config_for(exp)
    assert (cfg.app_tasks, cfg.threads, cfg.backlog, cfg.seed, cfg.records) == (3, 6, 9, 7, 123)
    assert cfg.model_dump(include=set(SandboxSettings.model_fields)) == exp.sandbox.model_dump()
    assert SandboxConfig.from_json(cfg.to_json()) == cfg


def test_csv_test_data_still_seeds_the_sandbox() -> None:
    exp = parse_experiment(_experiment({}, source="csv", path="rows.csv", seed=11))
    cfg = sandbox_config_for(exp)
    assert cfg.seed == 11 and cfg.records == SandboxConfig().records
