"""A results folder with a damaged file (issue 13 item 7): read around it with a warning, or refused in one line."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, run_cli
from tests.report.conftest import make_run


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_stages_parquet_is_read_from_the_stage_files(tmp_path: Path, cli: Cli) -> None:
    run = make_run(tmp_path, 100.0)
    _truncate(run / "stages.parquet")
    _truncate(run / "series.parquet")
    out = cli("analyze", str(run), "--boot", "20")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert f"{run / 'stages.parquet'}: unreadable" in out.stderr and "stages/stage-*.json" in out.stderr
    assert f"{run / 'series.parquet'}: unreadable" in out.stderr
    assert "saturation:" in out.stdout
    report = cli("report", str(run))
    assert report.returncode == 0, report.stderr
    assert "Traceback" not in report.stderr and "stages.parquet: unreadable" in report.stderr
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "stages.parquet: unreadable" in html  # the report says it too


def test_a_damaged_stage_file_is_refused_in_one_line_naming_it(tmp_path: Path, cli: Cli) -> None:
    run = make_run(tmp_path, 100.0)
    _truncate(run / "stages.parquet")
    _truncate(run / "stages" / "stage-001.json")
    for command in ("analyze", "report"):
        out = cli(command, str(run))
        assert out.returncode == 2, (command, out.stderr)
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "stage-001.json" in lines[0], (command, out.stderr)


def test_a_damaged_summary_is_refused_in_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    _truncate(run / "summary.json")
    out = run_cli("report", str(run))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "summary.json" in out.stderr
