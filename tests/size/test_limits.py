"""Production-scale limits (issue 20 item 5): the need by hand, the warning's words, and --strict-limits' exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from capacity.plan.experiment import Cluster, Production, load_experiment
from capacity.size.rules import check_limits, limit_warnings
from capacity.testing import SyntheticSpec, synthetic_run
from tests.conftest import REPO, Cli


def test_connections_need_by_hand() -> None:
    cluster = Cluster(app_tasks=2, puma_threads=5, sidekiq_tasks=1, sidekiq_concurrency=10)
    production = Production(
        limits={"db_max_connections": 100, "db_connections_per_thread": 2, "redis_maxclients": 200, "max_tasks": 8}
    )
    rows = {r["name"]: r for r in check_limits(9, 6, cluster, production)}
    assert rows["db_max_connections"]["need"] == (9 * 5 + 6 * 10) * 2 == 210 and not rows["db_max_connections"]["ok"]
    assert rows["redis_maxclients"]["need"] == 105 and rows["redis_maxclients"]["ok"]
    assert rows["max_tasks"]["need"] == 9 and not rows["max_tasks"]["ok"]
    warnings = limit_warnings(list(rows.values()))
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "production limit db_max_connections = 100 is exceeded: the recommended size needs 210"
    )
    assert check_limits(9, 6, cluster, Production()) == []  # unset limits are not checked
    unset = check_limits(2, 0, Cluster(), Production(limits={"redis_maxclients": 5}))
    assert unset[0]["need"] == 10 and "Puma's default 5" in unset[0]["how"]  # puma_threads unset: 5 assumed


@pytest.fixture
def staging_with_limit(tmp_path: Path) -> Path:
    """The staging file with ``[production.limits] db_max_connections = 100`` (the issue's example)."""
    exp = load_experiment(REPO / "experiments" / "clinician-workflow-staging.toml")
    data = exp.model_dump(mode="json", exclude_none=True)
    data["production"]["limits"] = {"db_max_connections": 100}
    data["workload"]["test_data"]["path"] = str(REPO / "experiments" / "data" / "staging-test-records.csv")
    path = tmp_path / "staging.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_size_warns_and_exits_1_only_with_strict_limits(tmp_path: Path, staging_with_limit: Path, cli: Cli) -> None:
    stages, _ = synthetic_run(SyntheticSpec(servers=8, service_s=0.05, start_frac=0.3, growth=1.3, seed=4))
    csv = tmp_path / "stages.csv"
    stages.to_csv(csv, index=False)
    # SLO capacity ~150 req/s on 2 tasks; the reminder burst (271 req/s x 1.2) needs 9 app + Sidekiq tasks
    args = ["size", str(csv), "--experiment", str(staging_with_limit), "--boot", "0"]
    args += ["--scenario", "reminder burst during check-in peak"]
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    rec = json.loads(out)
    (row,) = rec["limits"]
    need = rec["app_tasks"] * 5 + rec["sidekiq_tasks"] * 10
    assert row == {"name": "db_max_connections", "need": need, "limit": 100, "ok": need <= 100, "how": row["how"]}
    assert need > 100, rec["app_tasks"]
    assert any(n.startswith("production limit db_max_connections = 100 is exceeded") for n in rec["notes"])
    code, out, _ = cli(*args, "--strict-limits")
    assert code == 1 and "limit db_max_connections: need" in out and "EXCEEDED" in out


def test_search_exits_1_on_an_exceeded_limit_only_with_strict_limits(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capacity.core.models import RunSummary
    from capacity.search import hold_tasks

    over = {"name": "redis_maxclients", "need": 120.0, "limit": 100, "ok": False, "how": "..."}

    def searched(exp: object, options: object, console: object) -> RunSummary:
        rec = {"app_tasks": 12, "limits": [over]}
        return RunSummary(run_id="r", results_dir=str(tmp_path), experiment="x", target="t", recommendation=rec)

    monkeypatch.setattr(hold_tasks, "run_held_search", searched)
    assert cli("search", "--json", "--out", str(tmp_path))[0] == 0
    assert cli("search", "--json", "--strict-limits", "--out", str(tmp_path))[0] == 1
    monkeypatch.setattr(
        hold_tasks, "run_held_search", lambda *a: searched(*a).model_copy(update={"recommendation": {"limits": []}})
    )
    assert cli("search", "--json", "--strict-limits", "--out", str(tmp_path))[0] == 0


def test_cpu_target_and_its_old_name() -> None:
    from pydantic import ValidationError

    assert Production(target_utilisation=0.5).cpu_target == 0.5  # the old name still reads
    assert Production().cpu_target == 0.6 and Production().throughput_headroom == 0.2  # the documented defaults
    assert Production(target_utilisation=0.5, cpu_target=0.5).cpu_target == 0.5
    with pytest.raises(ValidationError, match="old name of cpu_target"):
        Production(target_utilisation=0.5, cpu_target=0.6)
