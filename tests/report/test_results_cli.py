"""``capacity results list|compare`` and ``capacity report`` as a user runs them: output, files, exits."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Cli, run_cli
from tests.report.conftest import make_run

DAY1 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def written_history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four runs written once per module (a second each under load); ``history`` copies them per test."""
    root = tmp_path_factory.mktemp("history") / "results"
    return {
        "base": make_run(root, 120.0, run_id="20261126T030000Z-nightly-test-aaaa", started=DAY1),
        "same": make_run(root, 120.0, run_id="20261127T030000Z-nightly-test-bbbb", started=DAY1 + timedelta(1)),
        "low": make_run(root, 90.0, run_id="20261128T030000Z-nightly-test-cccc", started=DAY1 + timedelta(2)),
        "none": make_run(root, None, run_id="20261129T030000Z-nightly-test-dddd", started=DAY1 + timedelta(3)),
    }


@pytest.fixture
def history(tmp_path: Path, written_history: dict[str, Path]) -> dict[str, Path]:
    root = tmp_path / "results"
    shutil.copytree(written_history["base"].parent, root)
    return {name: root / run.name for name, run in written_history.items()}


def test_compare_flags_the_regression_with_exit_1(history: dict[str, Path]) -> None:
    res = run_cli("results", "compare", str(history["base"]), str(history["low"]), "--json")
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    assert data["verdict"] == "regression"
    assert data["figures"]["slo_capacity"]["baseline"]["value"] == 120.0
    assert data["figures"]["slo_capacity"]["candidate"]["value"] == 90.0
    assert data["figures"]["slo_capacity"]["intervals_overlap"] is False


def test_compare_outcomes_in_text(history: dict[str, Path], cli: Cli) -> None:
    root = str(history["base"].parent)
    code, out, _ = cli("results", "compare", history["base"].name, history["same"].name, "--results", root)
    assert code == 0 and "verdict: ok" in out and "+0.0%" in out
    code, out, _ = cli("results", "compare", str(history["base"]), str(history["low"]))
    assert code == 1 and "120.0 [114.0, 126.0]" in out and "90.0 [85.5, 94.5]" in out and "-25.0%" in out
    assert "recommendation app_tasks: 15 -> 21" in out
    code, out, _ = cli("results", "compare", str(history["low"]), str(history["base"]), "--max-drop", "30")
    assert code == 0 and "verdict: improvement" in out
    code, out, _ = cli("results", "compare", str(history["base"]), str(history["none"]))
    assert code == 3 and "verdict: inconclusive" in out and "insufficient data" in out
    # the same drop inside a generous threshold is no regression
    code, out, _ = cli("results", "compare", str(history["base"]), str(history["low"]), "--max-drop", "30")
    assert code == 0


def test_compare_bad_input_is_one_line_exit_2(history: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("results", "compare", str(history["base"]), str(tmp_path / "nope"))
    assert code == 2 and "nope: no such run folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("results", "compare", str(history["base"]), str(history["low"]), "--max-drop", "-5")
    assert code == 2 and "--max-drop" in err


def test_list_shows_every_run_newest_first(cli: Cli, history: dict[str, Path], tmp_path: Path) -> None:
    root = history["base"].parent
    (root / "README.md").write_text("not a run")
    res = cli("results", "list", str(root))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("date (UTC)") and "SLO capacity" in lines[0] and "recommendation" in lines[0]
    assert [ln.split()[2] for ln in lines[1:]] == [history[k].name for k in ("none", "low", "same", "base")]
    assert "2026-11-28 03:00:00" in lines[2] and "90.0 [85.5, 94.5]" in lines[2] and "21 app tasks" in lines[2]
    assert " - " in lines[1]  # undetermined capacity


def test_list_json_and_errors(history: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    root = history["base"].parent
    code, out, _ = cli("results", "list", str(root), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 4
    by_id = {r["run_id"]: r for r in rows}
    base = by_id[history["base"].name]
    assert (base["slo_capacity_rps"], base["capacity_lo"], base["capacity_hi"]) == (120.0, 114.0, 126.0)
    assert base["experiment"] == "nightly-test" and base["app_tasks"] == 15 and base["stages"] == 5
    assert by_id[history["none"].name]["slo_capacity_rps"] is None
    code, out, _ = cli("results", "list", str(tmp_path / "empty-but-missing"))
    assert code == 2
    (tmp_path / "empty").mkdir()
    code, out, _ = cli("results", "list", str(tmp_path / "empty"))
    assert code == 0 and "no runs in" in out


def test_report_command_writes_the_files(history: dict[str, Path], cli: Cli) -> None:
    run = history["low"]
    code, out, _ = cli("report", str(run), "--json")
    assert code == 0
    paths = json.loads(out)
    assert Path(paths["report"]) == run / "report.html" and (run / "report.html").stat().st_size > 50_000
    assert "90.0 req/s [85.5, 94.5]" in (run / "summary.md").read_text()
    code, _, err = cli("report", str(run / "nope"))
    assert code == 2 and "no such run folder" in err


def test_help_lists_the_commands(cli: Cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0 and all(w in out for w in ("report", "results", "nightly"))
    code, out, _ = cli("results", "--help")
    assert code == 0 and "list" in out and "compare" in out
    code, out, _ = cli("nightly", "--help")
    assert code == 0 and "--baseline" in out and "Exit codes" in out
