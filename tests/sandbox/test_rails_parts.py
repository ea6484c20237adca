"""The Rails stack's pure parts: the postgres figures from one round of rows, the seed, the settings."""

from __future__ import annotations

import pytest

from capacity.sandbox.config import SandboxConfig, SandboxConfigError
from capacity.sandbox.records import synthetic_records
from capacity.sandbox.stack import RAILS_PACKAGES, install_hint
from capacity.sandbox.stack.db_collector import CUSTOM_METRICS, _Rates, db_points
from capacity.sandbox.stack.postgres import records_csv


def rows(commits: int, rollbacks: int = 0) -> list[list[str]]:
    return [
        ["conn", "12", "", "", ""],
        ["all", "15", "", "", ""],
        ["max", "50", "", "", ""],
        ["xact", str(commits), str(rollbacks), "0", ""],
        ["wait", "3", "", "", ""],
        ["open", "7", "", "", ""],
        ["lock", "4", "ExclusiveLock", "transactionid", "true"],
        ["lock", "3", "ShareLock", "transactionid", "false"],
    ]


def test_db_points_are_the_integrations_names_units_and_rates() -> None:
    rates = _Rates()
    first = dict(((n, t), v) for n, t, v in db_points(rows(1000), rates, now=10.0))
    assert first[("postgresql.connections", ())] == 12
    assert first[("postgresql.max_connections", ())] == 50
    assert first[("postgresql.percent_usage_connections", ())] == pytest.approx(15 / 50)  # a fraction, 0..1
    assert first[("postgresql.waiting_queries", ())] == 3
    assert first[("postgresql.transactions.open", ())] == 7
    assert first[("postgresql.locks", ("lock_mode:ShareLock", "lock_type:transactionid", "granted:false"))] == 3
    assert ("postgresql.commits", ()) not in first  # a rate needs two rounds
    second = dict(((n, t), v) for n, t, v in db_points(rows(1450, 5), rates, now=12.0))
    assert second[("postgresql.commits", ())] == pytest.approx(225.0)  # transactions per second
    assert second[("postgresql.rollbacks", ())] == pytest.approx(2.5)
    reset = dict(((n, t), v) for n, t, v in db_points(rows(10), rates, now=13.0))
    assert ("postgresql.commits", ()) not in reset  # a counter that went back (restart) is no rate


def test_pool_metrics_are_custom_rails_names() -> None:
    assert {m.rsplit(".", 1)[1] for m in CUSTOM_METRICS} == {"size", "connections", "busy", "idle", "waiting"}
    assert all(m.startswith("rails.active_record.pool.") for m in CUSTOM_METRICS)


def test_seed_has_every_record_and_one_patient_per_dfn() -> None:
    records = synthetic_records(42, 3000)
    appts, patients = records_csv(records)
    lines = appts.splitlines()
    assert (
        len(lines) == 3000 and lines[0] == f"{records[0].ien},{records[0].dfn},{records[0].sta3n},{records[0].clinic}"
    )
    dfns = [ln.split(",")[0] for ln in patients.splitlines()]
    assert len(dfns) == len(set(dfns)) == len({r.dfn for r in records})


def test_rails_settings_need_the_rails_stack() -> None:
    cfg = SandboxConfig(stack="rails", threads=10, db_pool=3, hot_rows=1)
    assert cfg.pool_per_task == 3 and SandboxConfig(stack="rails", threads=6).pool_per_task == 6
    with pytest.raises(SandboxConfigError, match=r"db_pool \(--db-pool\): this setting needs stack = 'rails'"):
        SandboxConfig(stack="puma", db_pool=3)
    with pytest.raises(SandboxConfigError, match=r"hot_rows \(--hot-rows\)"):
        SandboxConfig(hot_rows=2)
    with pytest.raises(SandboxConfigError, match=r"db_max_connections \(--db-max-connections\)"):
        SandboxConfig(stack="rails", db_max_connections=3)


def test_install_hint_names_the_rails_packages() -> None:
    hint = install_hint(list(RAILS_PACKAGES[-3:]), "rails")
    assert hint.startswith("--stack rails needs Debian packages not installed here: ruby-rails ruby-pg postgresql")
    assert hint.endswith("(install: sudo apt-get install -y ruby-rails ruby-pg postgresql)")
