"""``capacity metrics check`` fails naming each query with no series; ``search --require-metrics`` stops
before stage 1 naming a blind guard's query."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.observe.conftest import API_KEY, APP_KEY, populate
from tests.observe.fake_datadog import FakeDatadog

EXPERIMENT = """
name = "check"
[target]
base_url = "{target}"
[[workload.endpoints]]
name = "a"
path = "/a"
[guards]
min_pool_capacity = 0
[metrics]
source = "datadog"
cluster = "staging"
app_service = "cw-app"
sidekiq_service = "cw-sidekiq"
intervals = {{ "*" = 1 }}
[metrics.queries]
pool_capacity = "avg:puma.pool_capacty{{$app_scope}} by {{task_arn}}"
{more}
"""


def _file(tmp_path: Path, target: str = "http://127.0.0.1:9", more: str = "") -> Path:
    path = tmp_path / "check.toml"
    path.write_text(EXPERIMENT.format(target=target, more=more), encoding="utf-8")
    return path


def test_check_names_each_query_without_series(
    fake: FakeDatadog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    populate(fake, time.time() - 120, time.time())
    monkeypatch.setenv("CAPACITY_DATADOG_URL", fake.url)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    more = 'apm_hits = "sum:trace.rack.request.hits{$apm_scope}.as_count()"'
    code, _, err = cli("metrics", "check", str(_file(tmp_path, more=more)))
    assert code == 1
    assert "no series: metrics.queries.pool_capacity = 'avg:puma.pool_capacty{" in err
    assert "no series: metrics.queries.apm_hits" in err and "2 of 13 queries returned no series" in err
    assert "no series: metrics.queries.cpu_pct" not in err
    good = _file(tmp_path).read_text().replace("pool_capacty", "pool_capacity")
    (tmp_path / "good.toml").write_text(good)
    code, out, _ = cli("metrics", "check", str(tmp_path / "good.toml"))
    assert code == 0
    assert "all 12 queries returned series" in out
    # each query's metric: its agent integration, type and unit, or custom
    assert "mem_usage          ecs.fargate.mem.usage: ecs_fargate gauge, byte" in out
    assert "pool_capacity      puma.pool_capacity: puma gauge, unit" in out
    assert "queue_size         sidekiq.enqueued: sidekiq count, no unit" in out
    assert "queue_latency_s    sidekiq.queue.latency: custom (not an agent integration metric)" in out


def test_search_require_metrics_stops_before_any_load(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    """On the built-in sandbox (its own Datadog-compatible endpoint): the misspelt pool metric is named."""
    monkeypatch.delenv("CAPACITY_DATADOG_URL", raising=False)
    path = tmp_path / "sandbox.toml"
    misspelt = '\n[metrics.queries]\npool_capacity = "avg:puma.pool_capacty{$app_scope} by {task_arn}"\n'
    text = (
        (repo / "experiments" / "sandbox.toml")
        .read_text()
        .replace("[guards]\n", "[guards]\nmin_pool_capacity = 0\n")
        .replace("poll_deadline_s = 5\n", "poll_deadline_s = 2\n")  # the sandbox publishes every second
    )
    path.write_text(text + misspelt, encoding="utf-8")
    code, _, err = cli("search", str(path), "--require-metrics", "--out", str(tmp_path / "results"), "--json")
    assert code == 2, err
    assert (
        "--require-metrics: guard(s) blind, no series for metrics.queries pool_capacity ('avg:puma.pool_capacty{" in err
    )
    assert "cpu_pct" not in err  # the sandbox's first points arrived while the check waited
    assert not (tmp_path / "results").exists()
