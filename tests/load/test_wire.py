"""What workers send the master: seconds and stage totals survive encoding, msgpack and merging exactly."""

from __future__ import annotations

import msgpack

from capacity.load.engine import SecondRaw, StageRaw, new_histogram
from capacity.load.measure import (
    merge_kind_hists,
    merge_seconds,
    second_from_wire,
    second_to_wire,
    stage_from_wire,
    stage_to_wire,
    to_sample,
)


def _second(k: int, lat_us: list[int], **counts: int) -> SecondRaw:
    s = SecondRaw(k=k, cpu_pct=12.5, **counts)
    for v in lat_us:
        s.hist.record_value(v)
    return s


def _stage(lat_us: list[list[int]], stopped: str | None = None) -> StageRaw:
    hists = []
    for values in lat_us:
        h = new_histogram(3)
        for v in values:
            h.record_value(v)
        hists.append(h)
    return StageRaw(
        ended_wall=1000.5,
        load_stopped_wall=1000.0,
        seconds=[],
        requests=sum(len(v) for v in lat_us),
        ok=sum(len(v) for v in lat_us) - 1,
        errors=1,
        dropped=2,
        status_codes={"200": sum(len(v) for v in lat_us) - 1, "503": 1},
        names=[f"k{i}" for i in range(len(lat_us))],
        kind_requests=[len(v) for v in lat_us],
        kind_errors=[1] + [0] * (len(lat_us) - 1),
        kind_hists=hists,
        records_exhausted=3,
        stopped=stopped,
    )


def _through_msgpack(d: dict[str, object]) -> dict[str, object]:
    """Locust's transport packs messages with msgpack; the encoded dicts must survive it."""
    out = msgpack.unpackb(msgpack.packb(d, use_bin_type=True), raw=False)
    assert isinstance(out, dict)
    return out


def test_second_round_trip_keeps_counts_and_histogram() -> None:
    s = _second(4, [1000, 2000, 250_000], offered=3, ok=2, errors=1, dropped=5, inflight=7)
    d = _through_msgpack(second_to_wire(9, s))
    assert d["stage"] == 9
    back = second_from_wire(d)
    assert (back.k, back.offered, back.ok, back.errors, back.dropped, back.inflight, back.cpu_pct) == (
        4,
        3,
        2,
        1,
        5,
        7,
        12.5,
    )
    assert back.hist.get_total_count() == 3
    assert back.hist.get_max_value() == s.hist.get_max_value()
    assert back.hist.get_value_at_percentile(50) == s.hist.get_value_at_percentile(50)


def test_stage_round_trip_keeps_totals_and_kind_histograms() -> None:
    r = _stage([[1000, 3000], [5000]], stopped="interrupted")
    back = stage_from_wire(_through_msgpack(stage_to_wire(2, r)))
    for name in (
        "ended_wall",
        "load_stopped_wall",
        "requests",
        "ok",
        "errors",
        "dropped",
        "status_codes",
        "names",
        "kind_requests",
        "kind_errors",
        "records_exhausted",
        "stopped",
    ):
        assert getattr(back, name) == getattr(r, name), name
    assert [h.get_total_count() for h in back.kind_hists] == [2, 1]
    assert back.kind_hists[0].get_max_value() == r.kind_hists[0].get_max_value()
    assert back.seconds == []


def test_merged_seconds_add_counts_and_histograms_and_keep_the_busiest_cpu() -> None:
    a = _second(1, [1000] * 90, offered=100, ok=90, errors=10, dropped=1, inflight=4)
    b = _second(1, [9000] * 10, offered=10, ok=10, errors=0, dropped=0, inflight=2)
    b.cpu_pct = 80.0
    m = merge_seconds([second_from_wire(second_to_wire(0, a)), second_from_wire(second_to_wire(0, b))])
    assert (m.k, m.offered, m.ok, m.errors, m.dropped, m.inflight, m.cpu_pct) == (1, 110, 100, 10, 1, 6, 80.0)
    assert m.hist.get_total_count() == 100
    # an exact merge: p95 of the union, not an average of the workers' p95s
    sample = to_sample(m, stage=0, start_wall=100.0, warmup_s=0.5, target_rps=110.0, workers=2)
    assert sample.p95_ms is not None and 8.9 < sample.p95_ms < 9.1
    assert sample.phase == "measure" and sample.t == 101.0 and sample.workers == 2


def test_merged_kind_histograms_over_workers() -> None:
    total, per = merge_kind_hists([_stage([[1000] * 3, [2000]]), _stage([[1000], []])])
    assert total.get_total_count() == 5
    assert per["k0"]["requests"] == 4.0 and per["k0"]["errors"] == 2.0
    assert per["k1"]["requests"] == 1.0 and abs(per["k1"]["p95_ms"] - 2.0) < 0.01
