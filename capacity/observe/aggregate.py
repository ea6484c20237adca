"""Per-stage aggregates and completeness from tidy metric points (pure functions).

The names produced here are what the judge, the report and notebooks read: ``cpu_pct``,
``mem_pct_max``, ``queue_growth_per_s``... Guarded figures also appear per group as
``<name>[<label>]`` (label: the queue or the short task id) so a reason can say *which* queue is
growing or *which* task is out of memory.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

MIB = 1024.0 * 1024.0
MAX_GROUP_KEYS = 20
"""At most this many per-group keys per figure (the worst ones), to keep stage tables narrow."""

COUNT_QUERIES: dict[str, str] = {
    "jobs_processed": "jobs_per_s",
    "apm_hits": "apm_requests_per_s",
    "apm_errors": "apm_errors_per_s",
}
"""Queries giving counts per interval -> the per-second rate reported for them."""

_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
TIDY_COLUMNS = ["stage", "metric", "group", "t", "value"]


def window_buckets(start: float, end: float, interval: int) -> list[int]:
    """Rollup buckets (aligned to multiples of ``interval``) that lie inside ``[start, end]``.

    When the window is shorter than one interval, the buckets overlapping it are used instead:
    a coarse figure beats none.
    """
    i = max(1, int(interval))
    first = math.ceil(start / i) * i
    full = list(range(first, math.floor(end) - i + 1, i))
    full = [b for b in full if b + i <= end + 1e-9]
    if full:
        return full
    return [b for b in range(math.floor(start / i) * i, math.ceil(end), i) if b < end and b + i > start]


def in_window(frame: pd.DataFrame, start: float, end: float, intervals: dict[str, int]) -> pd.DataFrame:
    """Points whose rollup bucket is one of the window's buckets (per query's interval)."""
    if frame.empty:
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    for name, idx in frame.groupby("metric").groups.items():
        i = intervals.get(str(name), 1)
        buckets = set(window_buckets(start, end, i))
        ts = frame.loc[idx, "t"].to_numpy(dtype=float)
        b = (np.floor(ts / i) * i).astype(np.int64)
        keep[frame.index.get_indexer(idx)] = np.isin(b, list(buckets))
    return frame[keep]


def completeness(
    frame: pd.DataFrame, names: list[str], start: float, end: float, intervals: dict[str, int]
) -> dict[str, float]:
    """Share of the window's expected rollup intervals holding a value, per query (any group)."""
    out: dict[str, float] = {}
    for name in names:
        i = intervals.get(name, 1)
        expected = set(window_buckets(start, end, i))
        if not expected:
            out[name] = 1.0
            continue
        ts = frame.loc[frame["metric"] == name, "t"].to_numpy(dtype=float) if not frame.empty else np.array([])
        present = {int(math.floor(t / i) * i) for t in ts} & expected
        out[name] = round(len(present) / len(expected), 4)
    return out


def short_label(group: str) -> str:
    """``queue:default`` -> ``default``; ``task_arn:arn:...:task/cl/<32 hex>`` -> first 8 hex digits."""
    if group in ("", "*"):
        return ""
    values = []
    for tag in group.split(","):
        _, _, v = tag.partition(":")
        v = v or tag
        if v.startswith("arn:") and "/" in v:
            v = v.rsplit("/", 1)[1]
        if _TASK_ID.match(v):  # ECS task ids: 32 hex digits; 8 tell the tasks apart, as in the console
            v = v[:8]
        values.append(v)
    return "/".join(values)


def slope_per_s(t: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of ``y`` over ``t`` (units per second); None with < 2 distinct times."""
    if len(t) < 2 or float(np.ptp(t)) == 0.0:
        return None
    tc = t - t.mean()
    return float(np.dot(tc, y - y.mean()) / np.dot(tc, tc))


def _f(x: float | np.floating | None) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


class _Agg:
    def __init__(self, frame: pd.DataFrame, intervals: dict[str, int]) -> None:
        self.frame = frame
        self.intervals = intervals
        self.out: dict[str, float | None] = {}

    def values(self, name: str) -> pd.DataFrame:
        f = self.frame
        return f.loc[f["metric"] == name, ["group", "t", "value"]] if not f.empty else f

    def has(self, name: str) -> bool:
        return not self.values(name).empty

    def stats(self, name: str, key: str, *, mean: bool = True, mx: bool = True, p95: bool = False) -> None:
        """``key`` (mean), ``key_max`` and ``key_p95`` over every point of query ``name``."""
        self.put(self.values(name)["value"].to_numpy(dtype=float), key, mean=mean, mx=mx, p95=p95)

    def put(self, v: np.ndarray, key: str, *, mean: bool = True, mx: bool = True, p95: bool = False) -> None:
        if len(v) == 0:
            return
        if mean:
            self.out[key] = _f(v.mean())
        if mx:
            self.out[f"{key}_max"] = _f(v.max())
        if p95:
            self.out[f"{key}_p95"] = _f(np.percentile(v, 95))

    def per_group(self, frame: pd.DataFrame, key: str, how: str, *, worst: str = "max") -> None:
        """``key[label]`` per group (``how``: mean/max/min), worst first, capped."""
        if frame.empty:
            return
        by = frame.groupby("group")["value"].agg(how)
        if len(by) == 1 and by.index[0] == "*":
            return
        by = by.sort_values(ascending=(worst == "min")).head(MAX_GROUP_KEYS)
        for group, value in by.items():
            label = short_label(str(group)) or str(group)
            self.out[f"{key}[{label}]"] = _f(value)

    def ratio(self, num: str, den: str) -> pd.DataFrame:
        """num/den joined on (group, interval); falls back to the group-less den when groups differ."""
        return self.ratio_of(self.values(num), den, self.intervals.get(num, 1))

    def ratio_of(self, a: pd.DataFrame, den: str, interval: int) -> pd.DataFrame:
        b = self.values(den)
        if a.empty or b.empty:
            return pd.DataFrame(columns=["group", "t", "value"])
        i = max(interval, self.intervals.get(den, 1))
        a = a.assign(b=(np.floor(a["t"] / i) * i).astype(np.int64))
        b = b.assign(b=(np.floor(b["t"] / i) * i).astype(np.int64))
        j = a.merge(b[["group", "b", "value"]], on=["group", "b"], suffixes=("", "_den"))
        if j.empty:  # e.g. limit reported without the task tag: one limit for all
            den_by_t = b.groupby("b")["value"].mean().rename("value_den").reset_index()
            j = a.merge(den_by_t, on="b")
        j = j[j["value_den"] > 0]
        return pd.DataFrame({"group": j["group"], "t": j["t"], "value": j["value"] / j["value_den"]})

    # ---------------------------------------------------------------------------- one figure each
    def used_memory(self) -> pd.DataFrame:
        """``mem.usage`` minus ``mem.cache`` per (group, interval): the agent's usage counts page cache,
        which the kernel reclaims before it kills anything and ECS's MemoryUtilization leaves out."""
        usage, cache = self.values("mem_usage"), self.values("mem_cache")
        if usage.empty or cache.empty:
            return usage
        i = max(self.intervals.get("mem_usage", 1), self.intervals.get("mem_cache", 1))
        a = usage.assign(b=(np.floor(usage["t"] / i) * i).astype(np.int64))
        c = cache.assign(b=(np.floor(cache["t"] / i) * i).astype(np.int64)).groupby(["group", "b"], as_index=False)
        j = a.merge(c["value"].mean(), on=["group", "b"], how="left", suffixes=("", "_cache"))
        used = (j["value"] - j["value_cache"].fillna(0.0)).clip(lower=0.0)
        return pd.DataFrame({"group": j["group"], "t": j["t"], "value": used})

    def memory(self, limit_bytes: float | None = None) -> None:
        """Memory % of the container's limit, else of ``limit_bytes`` (the task's size from ``[cluster]``)."""
        used = self.used_memory()
        if used.empty:
            return
        mem = self.ratio_of(used, "mem_limit", self.intervals.get("mem_usage", 1))
        if mem.empty and limit_bytes:
            mem = used.assign(value=used["value"] / float(limit_bytes))
        if not mem.empty:
            pct = mem.assign(value=mem["value"] * 100.0)
            self.put(pct["value"].to_numpy(dtype=float), "mem_pct")
            self.per_group(pct, "mem_pct_max", "max")
        self.out["mem_mb_max"] = _f(used["value"].max() / MIB)
        if self.has("mem_cache"):
            self.out["mem_usage_mb_max"] = _f(self.values("mem_usage")["value"].max() / MIB)
            self.out["mem_cache_mb_max"] = _f(self.values("mem_cache")["value"].max() / MIB)

    def pool(self, max_threads: float | None) -> None:
        """Puma's spare capacity, and the busy share of threads (from ``max_threads`` when not queried)."""
        pool = self.values("pool_capacity")
        if pool.empty:
            return
        self.out["pool_capacity"] = _f(pool["value"].mean())
        self.out["pool_capacity_min"] = _f(pool["value"].min())
        self.per_group(pool, "pool_capacity", "mean", worst="min")
        # the median per task: at or below a limit means free threads stayed there for half the window
        self.out["pool_capacity_p50"] = _f(pool.groupby("group")["value"].median().min())
        self.per_group(pool, "pool_capacity_p50", "median", worst="min")
        frac = self.ratio("pool_capacity", "max_threads")
        if frac.empty and max_threads:
            frac = pool.assign(value=pool["value"] / float(max_threads))
        if not frac.empty:
            self.put((1.0 - frac["value"].to_numpy(dtype=float)) * 100.0, "pool_busy_pct")

    def queue(self) -> None:
        """Depth, and growth: the steepest least-squares slope over the queues."""
        queue = self.values("queue_size")
        if queue.empty:
            return
        self.stats("queue_size", "queue_size", mean=False)
        self.per_group(queue, "queue_size_max", "max")
        slopes: dict[str, float] = {}
        for group, part in queue.groupby("group"):
            s = slope_per_s(part["t"].to_numpy(dtype=float), part["value"].to_numpy(dtype=float))
            if s is not None:
                slopes[str(group)] = s
        if slopes:
            self.out["queue_growth_per_s"] = max(slopes.values())
            growth = pd.DataFrame({"group": list(slopes), "value": list(slopes.values())})
            self.per_group(growth, "queue_growth_per_s", "max")

    def counts(self) -> None:
        """Count queries (per interval) as mean rates per second."""
        for name, key in COUNT_QUERIES.items():
            part = self.values(name)
            if part.empty:
                continue
            i = self.intervals.get(name, 1)
            per_bucket = part.assign(b=np.floor(part["t"] / i)).groupby("b")["value"].sum()
            self.out[key] = _f(per_bucket.mean() / i)

    def extra(self, names: list[str]) -> None:
        """Other queries: the mean, and the max where it matters; an explicit ``*_max`` query wins."""
        out = self.out
        for name in names:
            part = self.values(name)
            if name in COUNT_QUERIES or part.empty:
                continue
            v = part["value"].to_numpy(dtype=float)
            if name.endswith("_max"):  # an explicit max query (e.g. CloudWatch's .maximum) wins
                out[name] = _f(v.max())
                continue
            if name in out:
                continue
            out[name] = _f(v.mean())
            if name in ("mem_pct", "cpu_pct", "apm_latency_s") and f"{name}_max" not in out:
                out[f"{name}_max"] = _f(v.max())
            if name == "mem_pct":
                self.per_group(part, "mem_pct_max", "max")


def stage_aggregates(
    frame: pd.DataFrame,
    intervals: dict[str, int],
    *,
    extra_names: list[str] | None = None,
    max_threads: float | None = None,
    mem_limit_bytes: float | None = None,
) -> dict[str, float | None]:
    """The per-stage figures from the window's points (``frame``: metric, group, t, value).

    ``mem_limit_bytes``: the task's memory, read against when the container reports no limit.
    """
    g = _Agg(frame, intervals)
    if g.has("cpu_pct"):
        g.stats("cpu_pct", "cpu_pct", p95=True)
        g.per_group(g.values("cpu_pct"), "cpu_pct", "mean")
    g.stats("cpu_container_pct", "cpu_container_pct")
    g.memory(mem_limit_bytes)
    g.pool(max_threads)
    if g.has("backlog"):
        g.stats("backlog", "backlog")
        g.per_group(g.values("backlog"), "backlog_max", "max")
    g.queue()
    if g.has("queue_latency_s"):
        g.stats("queue_latency_s", "queue_latency_s", mean=False)
        g.per_group(g.values("queue_latency_s"), "queue_latency_s_max", "max")
    g.counts()
    g.stats("sidekiq_cpu_pct", "sidekiq_cpu_pct")
    g.extra(extra_names or [])
    return g.out


def tidy(points: list[tuple[str, str, float, float]], stage: int) -> pd.DataFrame:
    """Rows (metric, group, t, value) -> the tidy table stored per stage."""
    if not points:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=d)
                for c, d in zip(TIDY_COLUMNS, ["int64", "str", "str", "float64", "float64"], strict=True)
            }
        )
    f = pd.DataFrame(points, columns=["metric", "group", "t", "value"])
    f.insert(0, "stage", stage)
    return f.drop_duplicates(["metric", "group", "t"], keep="last").sort_values(
        ["metric", "group", "t"], ignore_index=True
    )
