"""The one atomic write: whole file or the old one, fsynced, no temp files left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from capacity.store import atomic_write_bytes, atomic_write_text
from capacity.store.tables import read_table, write_table


def test_writes_and_replaces_with_parents_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "summary.json"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second é")
    assert path.read_text(encoding="utf-8") == "second é"
    assert os.listdir(path.parent) == ["summary.json"]


def test_data_is_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_bytes(tmp_path / "x.bin", b"\x00\x01")
    assert events[:2] == ["fsync", "replace"]
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stages.json"
    atomic_write_text(path, "old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["stages.json"]


def test_tables_are_written_through_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    frame = pd.DataFrame({"stage": [0, 1], "value": [1.5, 2.5]})
    path = write_table(frame, tmp_path / "series")
    assert synced
    pd.testing.assert_frame_equal(read_table(path), frame)
    assert os.listdir(tmp_path) == [path.name]
