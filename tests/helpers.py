"""Builders the tests share: the CLI in-process, a stage result, an experiment (imported by tests/conftest.py)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import tomli_w

from capacity.core.models import StageResult
from capacity.plan.experiment import Experiment, builtin_experiment_path, parse_experiment


# ------------------------------------------------------------------------------------ the CLI
class CliResult(NamedTuple):
    """What a user sees: the fields of ``subprocess.CompletedProcess``, and ``code, out, err = result``."""

    returncode: int
    stdout: str
    stderr: str


def invoke_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``capacity ARGS`` in this interpreter (a fresh one costs a second of start-up and imports)."""
    from capacity.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return CliResult(int(exc.value.code or 0), out, err)


# ------------------------------------------------------------------------------------ stage results
_STAGE: dict[str, Any] = {
    "index": 0,
    "target_rps": 10.0,
    "dropped": 0,
    "p50_ms": 5.0,
    "p95_ms": 9.0,
    "p99_ms": 12.0,
    "error_ratio": 0.0,
    "verdict": "pass",
}


def make_stage_result(**kw: Any) -> StageResult:
    """A passing stage with every required field; ``offered_rps`` and ``achieved_rps`` default to the target."""
    fields = {**_STAGE, **kw}
    fields.setdefault("offered_rps", fields["target_rps"])
    fields.setdefault("achieved_rps", fields["target_rps"])
    return StageResult(**fields)


# ------------------------------------------------------------------------------------ experiments
MINIMAL: dict[str, Any] = {
    "name": "test",
    "target": {"base_url": "http://127.0.0.1:9"},  # a closed port: nothing here sends load
    "workload": {"endpoints": [{"name": "a", "path": "/a"}]},
}


def experiment_data(*, builtin: bool = False, **sections: Any) -> dict[str, Any]:
    """A valid experiment as data: the minimal one, or the shipped sandbox experiment with ``builtin``.

    Each section given is merged over the base's (its keys replace the base's keys); a non-table value
    (``name``) replaces it.
    """
    base = tomllib.loads(builtin_experiment_path().read_text(encoding="utf-8")) if builtin else MINIMAL
    data = copy.deepcopy(base)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def make_experiment(*, builtin: bool = False, source: str | None = None, **sections: Any) -> Experiment:
    """The validated experiment of :func:`experiment_data` (``source``: the file its errors name; the shipped
    file for ``builtin``, as ``load_experiment`` would name it)."""
    if builtin and source is None:
        source = str(builtin_experiment_path())
    return parse_experiment(experiment_data(builtin=builtin, **sections), source=source)


def write_experiment(path: Path, *, builtin: bool = False, **sections: Any) -> Path:
    """The experiment of :func:`experiment_data` as a TOML file at ``path`` (for the CLI)."""
    path.write_text(tomli_w.dumps(experiment_data(builtin=builtin, **sections)), encoding="utf-8")
    return path
