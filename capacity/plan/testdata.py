"""Test records for path and body placeholders: stations, patients, appointments.

Two sources: a seeded synthetic generator that the sandbox shares (so every check-in addresses an
appointment the sandbox knows), and a CSV of the team's own records created in VistA. Plain data
and file reading only: the sandbox (asyncio) imports this, so nothing here may import Locust or
gevent. Handing records out during a stage is ``capacity.load.pool``.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from capacity.core.errors import ExperimentError
from capacity.plan.experiment import Workload
from capacity.plan.session_steps import RECORD_FIELDS

STATIONS: tuple[str, ...] = ("442", "500", "528", "552", "561", "589", "612", "640", "663", "688")
"""A fixed set of VistA station numbers (sta3n) the synthetic data spreads over."""

FIELDS = RECORD_FIELDS


@dataclass(frozen=True, slots=True)
class Record:
    """One patient with one appointment at one station: the values placeholders draw on."""

    sta3n: str
    dfn: str
    ien: str
    clinic: str

    def as_dict(self) -> dict[str, str]:
        return {"sta3n": self.sta3n, "dfn": self.dfn, "ien": self.ien, "clinic": self.clinic}


def synthetic_records(seed: int = 42, count: int = 5000) -> list[Record]:
    """Deterministic records; the sandbox regenerates the same list from the same seed and count."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(count):
        sta3n = STATIONS[rng.randrange(len(STATIONS))]
        dfn = str(100000 + rng.randrange(900000))
        ien = str(1_000_000 + i)  # unique per record: an appointment is checked in once
        clinic = str(100 + rng.randrange(400))
        out.append(Record(sta3n, dfn, ien, clinic))
    return out


def load_csv_records(path: str | Path, *, source_file: str | None = None) -> list[Record]:
    """Read ``sta3n,dfn,ien[,clinic]`` rows; a missing column or empty file names the file."""
    p = Path(path)
    if not p.is_absolute() and source_file:
        p = Path(source_file).resolve().parent / p
    if not p.is_file():
        raise ExperimentError(f"test data CSV not found: {p}", file=source_file, key="workload.test_data.path")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("sta3n", "dfn", "ien") if c not in (reader.fieldnames or [])]
        if missing:
            raise ExperimentError(
                f"test data CSV {p} lacks column(s) {', '.join(missing)}",
                file=source_file,
                key="workload.test_data.path",
            )
        rows = [
            Record(r["sta3n"].strip(), r["dfn"].strip(), r["ien"].strip(), (r.get("clinic") or "").strip())
            for r in reader
        ]
    if not rows:
        raise ExperimentError(f"test data CSV {p} has no rows", file=source_file, key="workload.test_data.path")
    return rows


def load_records(workload: Workload, source_file: str | None) -> list[Record]:
    """The workload's records (synthetic, from its CSV, or none), read once per run."""
    td = workload.test_data
    if td.source == "sandbox":
        return synthetic_records(td.seed, td.records)
    if td.source == "csv":
        return load_csv_records(td.path or "", source_file=source_file)
    return []
