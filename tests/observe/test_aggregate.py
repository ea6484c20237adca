"""Pure parts: v1 answer parsing, windows and completeness, aggregates, metric guards."""

from __future__ import annotations

import pytest

from capacity.observe.aggregate import completeness, in_window, short_label, stage_aggregates, tidy, window_buckets
from capacity.observe.v1_answers import parse_v1

Q = ["avg:ecs.fargate.mem.usage{*} by {task_arn}", "max:sidekiq.queue.size{*} by {queue}"]


def series(idx: int | None, metric: str, tags: list[str], points: list[list[float | None]], **kw: object) -> dict:
    s: dict = {"metric": metric, "pointlist": points, "interval": 10, "tag_set": tags, "scope": "*", **kw}
    if idx is not None:
        s["query_index"] = idx
    return s


def test_parse_v1_nulls_units_groups_and_query_index() -> None:
    mib = [{"family": "bytes", "name": "mebibyte", "scale_factor": 1048576.0}, None]
    body = {
        "status": "ok",
        "series": [
            series(0, "ecs.fargate.mem.usage", ["task_arn:a"], [[1000.0, 2.0], [11000.0, None]], unit=mib),
            series(1, "sidekiq.queue.size", ["queue:default"], [[1000.0, 5.0]]),
            series(1, "sidekiq.queue.size", ["queue:mailers"], [[1000.0, "x"], [2000.0]]),
        ],
    }
    a = parse_v1(body, ["mem_usage", "queue_size"], Q)
    assert [(p.name, p.group, p.t, p.value) for p in a.points] == [
        ("mem_usage", "task_arn:a", 1.0, 2.0 * 1048576),
        ("queue_size", "queue:default", 1.0, 5.0),
    ]
    assert a.intervals == {"mem_usage": 10, "queue_size": 10}
    assert a.warnings == ["queue_size: ignored 2 malformed point(s)"]
    # without query_index, series are matched by metric name
    body2 = {"series": [series(None, "sidekiq.queue.size", [], [[0.0, 1.0]])]}
    assert parse_v1(body2, ["mem_usage", "queue_size"], Q).points[0].group == "*"


@pytest.mark.parametrize(
    "body,why",
    [
        ({"status": "error", "error": "Rate limited by org quota"}, "Rate limited"),
        ({"status": "ok"}, "no 'series' list"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_parse_v1_unusable_answers_fail_every_query(body: object, why: str) -> None:
    a = parse_v1(body, ["mem_usage", "queue_size"], Q)
    assert set(a.failed) == {"mem_usage", "queue_size"} and why in a.failed["mem_usage"]


def test_window_buckets_and_completeness() -> None:
    assert window_buckets(102.3, 142.3, 10) == [110, 120, 130]  # full buckets only
    assert window_buckets(100.0, 140.0, 10) == [100, 110, 120, 130]
    assert window_buckets(102.0, 108.0, 60) == [60]  # shorter than one interval: the overlapping one
    f = tidy([("cpu_pct", "g", t, 1.0) for t in (95.0, 100.0, 110.0, 130.0, 140.0)], stage=3)
    w = in_window(f, 100.0, 140.0, {"cpu_pct": 10})
    assert list(w["t"]) == [100.0, 110.0, 130.0] and set(w["stage"]) == {3}
    assert completeness(w, ["cpu_pct", "backlog"], 100.0, 140.0, {"cpu_pct": 10, "backlog": 10}) == {
        "cpu_pct": 0.75,
        "backlog": 0.0,
    }


def test_aggregates_known_truth() -> None:
    rows = []
    for t in range(0, 60, 10):
        rows += [
            ("cpu_pct", "task_arn:arn:aws:ecs:r:1:task/c/aa", t, 20.0 + t),  # 20..70, mean 45
            ("cpu_pct", "task_arn:arn:aws:ecs:r:1:task/c/bb", t, 10.0),
            ("mem_usage", "task_arn:arn:aws:ecs:r:1:task/c/aa", t, 512 * 2**20),
            ("mem_limit", "*", t, 1024 * 2**20),  # limit without task tag
            ("pool_capacity", "task_arn:arn:aws:ecs:r:1:task/c/aa", t, 1.0),
            ("queue_size", "queue:default", t, 100.0 - 0.5 * t),  # draining
            ("jobs_processed", "queue:default", t, 30.0),
            ("apm_latency_s", "*", t, 0.2),
        ]
    a = stage_aggregates(tidy(rows, 0), {"jobs_processed": 10}, extra_names=["apm_latency_s"], max_threads=4)
    assert a["cpu_pct"] == pytest.approx(27.5) and a["cpu_pct[aa]"] == pytest.approx(45.0)
    assert a["cpu_pct_max"] == 70.0 and a["cpu_pct[bb]"] == 10.0
    assert a["mem_pct"] == pytest.approx(50.0) and a["mem_mb_max"] == pytest.approx(512.0)
    assert a["pool_busy_pct"] == pytest.approx(75.0)  # 1 - 1/4 (cluster's puma_threads fallback)
    assert a["queue_growth_per_s"] == pytest.approx(-0.5) and a["queue_size_max"] == 100.0
    assert a["jobs_per_s"] == pytest.approx(3.0)
    assert a["apm_latency_s"] == pytest.approx(0.2)
    assert "backlog_max" not in a and stage_aggregates(tidy([], 0), {}) == {}
    assert short_label("queue:default") == "default" and short_label("*") == ""


def test_task_labels_are_short() -> None:
    arn = "task_arn:arn:aws:ecs:us-gov-west-1:123456789012:task/staging/6697ceea2d3047a49047499ed776062f"
    assert short_label(arn) == "6697ceea"
    assert short_label("task_arn:6697ceea2d3047a49047499ed776062f") == "6697ceea"
    assert short_label("ecs_service:a,queue:low") == "a/low"
