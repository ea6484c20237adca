"""Test records (plan.testdata, no Locust) and how a stage hands them out (load.pool)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from capacity.core.errors import ExperimentError
from capacity.load.pool import RecordPool, RecordsExhausted, stripe
from capacity.plan.testdata import STATIONS, load_csv_records, synthetic_records


def test_synthetic_records_are_deterministic_with_unique_appointments() -> None:
    a, b = synthetic_records(7, 300), synthetic_records(7, 300)
    assert a == b and a != synthetic_records(8, 300)
    assert len({r.ien for r in a}) == 300 and {r.sta3n for r in a} <= set(STATIONS)


def test_sandbox_serves_the_same_record_class() -> None:
    from capacity.plan.testdata import Record
    from capacity.sandbox.records import Record as SandboxRecord

    assert SandboxRecord is Record


def test_importing_the_sandbox_and_the_data_models_patches_nothing() -> None:
    code = (
        "import sys, capacity.sandbox, capacity.core.measurement, capacity.plan.testdata, capacity.load, ssl\n"
        "from gevent import monkey\n"
        "assert not monkey.is_module_patched('socket'), 'patched'\n"
        "assert 'locust' not in sys.modules, 'locust imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_csv_records_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "r.csv"
    good.write_text("sta3n,dfn,ien\n442, 1 ,10\n500,2,11\n")
    assert [r.as_dict() for r in load_csv_records("r.csv", source_file=str(tmp_path / "exp.toml"))] == [
        {"sta3n": "442", "dfn": "1", "ien": "10", "clinic": ""},
        {"sta3n": "500", "dfn": "2", "ien": "11", "clinic": ""},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("sta3n,ien\n442,10\n")
    with pytest.raises(ExperimentError, match="lacks column"):
        load_csv_records(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("sta3n,dfn,ien\n")
    with pytest.raises(ExperimentError, match="no rows"):
        load_csv_records(empty)
    with pytest.raises(ExperimentError, match="not found"):
        load_csv_records(tmp_path / "missing.csv")


def test_pool_hands_each_record_out_once_then_reports_exhaustion() -> None:
    recs = synthetic_records(1, 5)
    pool = RecordPool(recs, seed=3)
    taken = [pool.take() for _ in range(5)]
    assert sorted(r.ien for r in taken) == sorted(r.ien for r in recs)
    with pytest.raises(RecordsExhausted):
        pool.take()
    assert pool.shared() in recs  # shared (read) use keeps cycling


def test_stripes_are_disjoint_and_cover_everything() -> None:
    recs = synthetic_records(1, 10)
    parts = [stripe(recs, i, 3) for i in range(3)]
    assert sorted(r.ien for p in parts for r in p) == sorted(r.ien for r in recs)
    assert stripe(recs, 0, 1) == recs
