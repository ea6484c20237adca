"""What workers send the master: seconds and stage totals survive encoding, msgpack and merging exactly."""

from __future__ import annotations

import msgpack

from capacity.load.engine import SecondRaw, StageRaw
from capacity.load.measure import (
    endpoint_stats,
    merge_parts,
    merge_seconds,
    second_from_wire,
    second_to_wire,
    stage_from_wire,
    stage_to_wire,
    to_sample,
)
from capacity.load.raw import PartRaw


def _second(k: int, lat_us: list[int], **counts: int) -> SecondRaw:
    s = SecondRaw(k=k, cpu_pct=12.5, **counts)
    for v in lat_us:
        s.hist.record_value(v)
    return s


def _part(lat_us: list[list[int]], unfinished: list[int] | None = None) -> PartRaw:
    part = PartRaw.empty(len(lat_us))
    for i, values in enumerate(lat_us):
        for v in values:
            part.hists[i].record_value(v)
        part.requests[i] = len(values)
    part.errors[0] = 1
    part.unfinished = list(unfinished or [0] * len(lat_us))
    done = sum(len(v) for v in lat_us) - sum(part.unfinished)
    part.status_codes = {"200": done - 1, "503": 1, **({"aborted": sum(part.unfinished)} if unfinished else {})}
    part.dropped = 2
    return part


def _stage(lat_us: list[list[int]], stopped: str | None = None, unfinished: list[int] | None = None) -> StageRaw:
    return StageRaw(
        ended_wall=1000.5,
        load_stopped_wall=1000.0,
        stop_offset_s=4.25 if stopped else None,
        ok_by_second=[3, 4, 0],
        seconds=[],
        names=[f"k{i}" for i in range(len(lat_us))],
        warmup=_part([[500_000]] * len(lat_us)),
        measured=_part(lat_us, unfinished),
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


def test_stage_round_trip_keeps_both_parts_and_kind_histograms() -> None:
    r = _stage([[1000, 3000], [5000]], stopped="interrupted", unfinished=[1, 0])
    back = stage_from_wire(_through_msgpack(stage_to_wire(2, r)))
    for name in (
        "ended_wall",
        "load_stopped_wall",
        "stop_offset_s",
        "ok_by_second",
        "requests",
        "ok",
        "errors",
        "unfinished",
        "dropped",
        "status_codes",
        "names",
        "kind_requests",
        "records_exhausted",
        "stopped",
    ):
        assert getattr(back, name) == getattr(r, name), name
    for part in ("warmup", "measured"):
        a, b = getattr(back, part), getattr(r, part)
        assert (a.requests, a.errors, a.unfinished, a.status_codes, a.dropped) == (
            b.requests,
            b.errors,
            b.unfinished,
            b.status_codes,
            b.dropped,
        )
        assert [h.get_total_count() for h in a.hists] == [h.get_total_count() for h in b.hists]
    assert back.kind_hists[0].get_max_value() == r.kind_hists[0].get_max_value()
    assert back.unfinished == 1 and back.ok == 1 and back.seconds == []


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


def test_merged_parts_and_endpoint_stats_over_workers() -> None:
    raws = [_stage([[1000] * 3, [2000]], unfinished=[1, 0]), _stage([[1000], []])]
    part = merge_parts(raws, include_warmup=False)
    total, per = endpoint_stats(raws[0].names, part)
    assert total.get_total_count() == 5
    assert (per["k0"].requests, per["k0"].errors, per["k0"].unfinished, per["k0"].ok) == (4, 2, 1, 1)
    assert per["k1"].requests == 1 and per["k1"].p95_ms is not None and abs(per["k1"].p95_ms - 2.0) < 0.01
    # the warm-up adds its arrivals to every kind when the stage's window starts at the stage's start
    whole = merge_parts(raws, include_warmup=True)
    assert whole.total_requests == part.total_requests + 4 and whole.dropped == 8
    # per-endpoint rows add up to the stage's totals
    assert sum(s.requests for s in per.values()) == part.total_requests
    assert sum(s.ok + s.errors + s.unfinished for s in per.values()) == part.total_requests
