"""A small open-loop HTTP client for the sandbox tests: arrivals at fixed times, whatever the latency.

Each arrival is its own asyncio task started at ``t0 + k / rate``; nothing waits for a previous
response, so a slow server does not lower the offered rate (unlike a closed loop). Connections are
kept alive and unlimited in number, as an open-model generator needs.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from capacity.sandbox.records import synthetic_records

Request = tuple[str, str, bytes | None]  # method, path, body


@dataclass
class Outcome:
    intended: float  # seconds since the run started
    done: float
    status: int

    @property
    def latency(self) -> float:
        return self.done - self.intended


@dataclass
class Run:
    rate: float
    duration: float
    outcomes: list[Outcome] = field(default_factory=list)
    late_starts: int = 0

    def window(self, start: float, end: float | None = None) -> list[Outcome]:
        end = self.duration if end is None else end
        return [o for o in self.outcomes if start <= o.intended < end]

    def goodput(self, start: float, end: float | None = None) -> float:
        """Successful responses completed in [start, end) per second."""
        end = self.duration if end is None else end
        ok = [o for o in self.outcomes if 200 <= o.status < 300 and start <= o.done < end]
        return len(ok) / (end - start)

    def offered(self, start: float, end: float | None = None) -> float:
        end = self.duration if end is None else end
        return len(self.window(start, end)) / (end - start)

    def share(self, status: int, start: float = 0.0) -> float:
        w = self.window(start)
        return sum(1 for o in w if o.status == status) / max(1, len(w))

    def latency_pct(self, q: float, start: float = 0.0) -> float:
        lat = sorted(o.latency for o in self.window(start) if 200 <= o.status < 300)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")


def mix_requests(seed: int = 42, count: int = 5000, first: int = 0) -> Callable[[int], Request]:
    """The seed's mix (about 43.5% GET / 43.5% POST status, 6.5% summary, 6.5% check-in) with real IENs.

    Appointments are used once each from record ``first`` on, so separate runs against one sandbox
    must pass disjoint ``first`` values or their check-ins would be 409s.
    """
    records = synthetic_records(seed, count)
    pattern = ["get", "post"] * 13 + ["summary", "checkin"] * 2  # 30 slots: 26 status, 2 + 2 appointments
    fresh = itertools.count(first)

    def make(k: int) -> Request:
        kind = pattern[k % len(pattern)]
        rec = records[k % len(records)]
        base = f"/api/v1/vista-sites/{rec.sta3n}"
        if kind == "get":
            return "GET", f"{base}/patient_demographics_status?patientDfn={rec.dfn}", None
        if kind == "post":
            body = f'{{"patientDfn": "{rec.dfn}", "demographicsConfirmationPayload": {{}}}}'.encode()
            return "POST", f"{base}/patient_demographics_status", body
        appt = records[next(fresh) % len(records)]
        action = "summary" if kind == "summary" else "checkins"
        return "POST", f"/api/v1/vista-sites/{appt.sta3n}/appointments/{appt.ien}/{action}", b"{}"

    return make


def only(path: str, method: str = "POST", body: bytes | None = b"{}") -> Callable[[int], Request]:
    return lambda k: (method, path.format(k=k), body)


async def _run(base_url: str, rate: float, duration: float, make: Callable[[int], Request], timeout_s: float) -> Run:
    run = Run(rate, duration)
    conn = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(base_url, connector=conn, timeout=timeout, headers=headers) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks: list[asyncio.Task[None]] = []

        async def one(k: int, intended: float) -> None:
            method, path, body = make(k)
            try:
                async with session.request(method, path, data=body) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            run.outcomes.append(Outcome(intended, loop.time() - t0, status))

        n = int(rate * duration)
        for k in range(n):
            intended = k / rate
            delay = t0 + intended - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                run.late_starts += 1
            tasks.append(asyncio.create_task(one(k, intended)))
        await asyncio.gather(*tasks)
    return run


def open_loop(
    base_url: str, rate: float, duration: float, make: Callable[[int], Request], timeout_s: float = 10.0
) -> Run:
    """Offer ``rate`` req/s for ``duration`` s (bounded: at most rate*duration requests), then wait for all."""
    started = time.monotonic()
    run = asyncio.run(_run(base_url, rate, duration, make, timeout_s))
    assert time.monotonic() - started < duration + timeout_s + 5
    return run


def open_loop_subprocess(
    base_url: str,
    rate: float,
    duration: float,
    *,
    first: int = 0,
    count: int = 5000,
    path: str | None = None,
    timeout_s: float = 10.0,
) -> Run:
    """``open_loop`` in a fresh interpreter: the test process may be gevent-patched by Locust imports,
    and a separate process keeps the client's CPU apart from pytest's."""
    import json
    import subprocess
    import sys

    args = [
        sys.executable,
        __file__,
        base_url,
        str(rate),
        str(duration),
        str(first),
        str(count),
        path or "",
        str(timeout_s),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=duration + timeout_s + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"open-loop client failed: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout)
    run = Run(rate, duration, [Outcome(*o) for o in data["outcomes"]], data["late_starts"])
    return run


if __name__ == "__main__":
    import json
    import sys

    url, rate_s, dur_s, first_s, count_s, path_s, timeout_text = sys.argv[1:8]
    maker = only(path_s) if path_s else mix_requests(count=int(count_s), first=int(first_s))
    result = open_loop(url, float(rate_s), float(dur_s), maker, float(timeout_text))
    print(
        json.dumps(
            {"late_starts": result.late_starts, "outcomes": [[o.intended, o.done, o.status] for o in result.outcomes]}
        )
    )
