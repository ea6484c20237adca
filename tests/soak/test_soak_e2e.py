"""End to end on the sandbox: a soak finds the leak and the slowing queue drain set in the sandbox, calls a
sandbox without faults flat, offers a burst shape second by second, and keeps everything on Ctrl-C.

Soaks here last 30-40 s, so the sandbox's faults are scaled to show in that time (64 KiB leaked per
request; jobs twice as slow every 10 s) and so are the ``[soak]`` thresholds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tomli_w

from tests.conftest import REPO, run_cli
from tests.helpers import experiment_data

pytestmark = [pytest.mark.slow, pytest.mark.waits]

CONTRACT_DRIFT = {"mem_mib_per_hour", "queue_jobs_per_hour", "p95_ms_per_hour", "error_ratio_per_hour"}


def _experiment(tmp_path: Path, *, sandbox: dict[str, Any], soak: dict[str, Any]) -> Path:
    data = experiment_data(builtin=True)
    data["sandbox"].update(sandbox)
    data["guards"].update({"max_queue_latency_s": 1e6, "max_queue_growth_per_s": 1e6})  # the queue may grow here
    data["soak"] = {"segment_seconds": 10, "warmup_seconds": 5, **soak}
    path = tmp_path / "soak.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _run_dir(out: Path) -> Path:
    (run,) = list(out.iterdir())
    return run


@pytest.fixture(scope="module")
def soaks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """The leaking and the leak-free soak, run side by side (each its own sandbox; 30-40 req/s of 50-ms
    requests wait, they do not compute): the two tests below cost the longer soak, not both."""
    leak_dir, flat_dir = tmp_path_factory.mktemp("leak"), tmp_path_factory.mktemp("flat")
    leak = _experiment(
        leak_dir,
        sandbox={"mem_growth_kb": 64, "sidekiq_concurrency": 1, "job_ms": 200, "job_slowdown_per_hour": 360},
        soak={"max_mem_mib_per_hour": 500, "max_p95_ms_per_hour": 1e6, "max_queue_jobs_per_hour": 100},
    )
    flat = _experiment(
        flat_dir,
        sandbox={},
        soak={
            "max_mem_mib_per_hour": 500,
            "max_p95_ms_per_hour": 20000,
            "max_queue_jobs_per_hour": 1000,
            "max_error_ratio_per_hour": 0.5,
        },
    )
    burst = ["--burst-rps", "30", "--burst-seconds", "3", "--burst-period", "10"]
    runs = {
        "leak": (leak_dir / "results", ["--rps", "40", "--duration", "30s", "--no-report"], leak),
        "flat": (flat_dir / "results", ["--rps", "30", "--duration", "20s", *burst], flat),
    }
    done: dict[str, tuple[subprocess.CompletedProcess[str], Path]] = {}

    def one(name: str) -> None:
        out, args, exp = runs[name]
        done[name] = (run_cli("soak", str(exp), *args, "--json", "--out", str(out)), out)

    threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in runs]  # greenlets here
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    return done


def test_soak_finds_the_set_leak_within_20_percent_and_the_growing_queue(
    soaks: dict[str, tuple[subprocess.CompletedProcess[str], Path]],
) -> None:
    cp, out = soaks["leak"]
    assert cp.returncode == 1, cp.stderr
    result = json.loads(cp.stdout)
    assert set(result) == {"drift", "time_to_limit_h", "verdict"} and result["verdict"] == "fail"
    assert set(result["drift"]) == CONTRACT_DRIFT
    mem = result["drift"]["mem_mib_per_hour"]
    assert set(mem) == {"value", "lo", "hi", "verdict"} and mem["verdict"] == "growing"
    record = json.loads((_run_dir(out) / "soak.json").read_text())
    set_per_k = record["sandbox_set"]["mem_mib_per_1000_requests"]  # 64 KiB x 1000 = 62.5 MiB
    fitted_per_k = record["detail"]["mem_mib_per_1000_requests"]["value"]
    print(f"\nleak fitted {fitted_per_k:.1f} MiB per 1000 requests, set {set_per_k:.1f}")
    assert fitted_per_k == pytest.approx(set_per_k, rel=0.2)
    assert mem["value"] == pytest.approx(record["sandbox_set"]["mem_mib_per_hour"], rel=0.2)
    assert 0 < result["time_to_limit_h"]["mem_mib_per_hour"] < 1  # 512 MiB at ~4 GiB/h
    assert result["drift"]["queue_jobs_per_hour"]["verdict"] == "growing"
    assert result["drift"]["error_ratio_per_hour"]["verdict"] == "flat"


def test_leak_free_sandbox_is_flat_and_a_burst_stage_follows_its_shape(
    soaks: dict[str, tuple[subprocess.CompletedProcess[str], Path]],
) -> None:
    cp, out = soaks["flat"]
    assert cp.returncode == 0, cp.stderr
    result = json.loads(cp.stdout)
    assert result["verdict"] == "pass"
    assert {k: v["verdict"] for k, v in result["drift"].items()} == dict.fromkeys(CONTRACT_DRIFT, "flat")
    run = _run_dir(out)
    series = pd.read_parquet(run / "series.parquet")
    offered = series.groupby("stage")["offered"].apply(list)
    for per_second in offered:  # each 10-s segment: a 3-s burst at 60/s, then 30/s
        assert len(per_second) == 10
        assert [abs(n - want) <= 1 for n, want in zip(per_second, [60] * 3 + [30] * 7, strict=True)] == [True] * 10
    assert "Soak: drift over time" in (run / "report.html").read_text()


def test_ctrl_c_keeps_the_segments_and_exits_130(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, sandbox={}, soak={"segment_seconds": 5, "warmup_seconds": 2})
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "capacity", "soak", str(exp), "--rps", "20", "--duration", "60s", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/stages/stage-001.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    run = _run_dir(out)
    assert json.loads((run / "summary.json").read_text())["stopped_reason"] == "interrupted"
    assert len(list((run / "stages").glob("stage-*.json"))) >= 2
    assert json.loads((run / "soak.json").read_text())["stopped_reason"] == "interrupted"
