"""``capacity sandbox``: run the local Clinician Workflow stand-in, or print the capacity it implies."""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import quote

import typer

from capacity.cli.common import Commands
from capacity.core.errors import CapacityError

SANDBOX_HELP = """Serve a local stand-in for Clinician Workflow on 127.0.0.1 whose capacity is known.

App tasks are separate processes with --threads request slots each and a bounded --backlog (then
503); the summary endpoint feeds a Sidekiq-like queue drained by --sidekiq-tasks x
--sidekiq-concurrency workers. Metrics (CPU, memory, Puma pool, queue, per-endpoint requests) are
served by a Datadog-compatible GET /api/v1/query on the same port.

Capacity by formula (see --explain): app_tasks * threads / mean_service_s for the thread pools,
sidekiq_tasks * sidekiq_concurrency / job_s for the queue.

Examples:

  capacity sandbox --explain

  capacity sandbox --explain --json --app-tasks 3 --threads 8 --service-ms 80

  capacity sandbox --port 8080 --duration 60

  capacity sandbox --error-above-rps 50      # inject 500s above 50 req/s

  capacity sandbox --stack rails --app-tasks 2 --threads 10 --db-pool 3 --hot-rows 1   # Rails on PostgreSQL

  capacity sandbox --explain --contention-sigma 0.25 --crosstalk-kappa 0.08   # a USL-shaped cluster

  AWS_ENDPOINT_URL=http://127.0.0.1:5000 capacity sandbox --follow-ecs staging/app   # act as an ECS service

  CAPACITY_SANDBOX_KEYS=api:app capacity sandbox --require-keys
"""

KEYS_ENV = "CAPACITY_SANDBOX_KEYS"


def _endpoint_ms(specs: list[str]) -> tuple[tuple[str, float], ...]:
    out: list[tuple[str, float]] = []
    for spec in specs:
        name, sep, ms = spec.partition("=")
        try:
            value = float(ms)
        except ValueError:
            value = float("nan")
        if not sep or not name or value != value:
            raise CapacityError(f"--endpoint-ms {spec!r}: expected NAME=MS, e.g. appointment_summary=120")
        out.append((name.strip(), value))
    return tuple(out)


def _keys_from_env() -> tuple[str, str]:
    raw = os.environ.get(KEYS_ENV, "")
    api, sep, app_key = raw.partition(":")
    if not sep or not api or not app_key:
        raise CapacityError(f"--require-keys needs {KEYS_ENV}=API_KEY:APP_KEY in the environment")
    return api, app_key


def _explain_text(t: dict[str, object]) -> str:
    f = t["formula"]
    assert isinstance(f, dict)
    mix = t["mix"]
    assert isinstance(mix, dict)
    qb = t["queue_bound_rps"]
    lines = [
        f"thread-pool saturation: {t['pool_rps']:.1f} req/s   ({f['pool_rps']})",
        f"mean service time over the mix: {t['mean_service_ms']:.2f} ms",
        f"Sidekiq drain rate: {t['queue_jobs_per_s']:.1f} jobs/s   ({f['queue_jobs_per_s']})",
        "queue grows above: "
        + (
            f"{qb:.1f} req/s   ({f['queue_bound_rps']})"
            if isinstance(qb, float)
            else "never (no request enqueues a job)"
        ),
        f"first limit a rising load meets: {t['bottleneck']}",
        "default mix: " + ", ".join(f"{k} {v:.1%}" for k, v in mix.items()),
        *_curve_lines(t),
    ]
    return "\n".join(lines)


def _curve_lines(t: dict[str, object]) -> list[str]:
    """The scaling bottleneck: the true USL parameters and the capacity at each app task count."""
    usl, by = t.get("usl"), t.get("by_app_tasks")
    if not isinstance(usl, dict) or not isinstance(by, dict) or not (usl["sigma"] or usl["kappa"]):
        return []
    peak = usl["peak_tasks"]
    return [
        f"scaling (USL): sigma {usl['sigma']:g}, kappa {usl['kappa']:g}, lambda {usl['lambda']:.2f} req/s; "
        + (f"peak at N = {peak:.2f}" if peak else "no peak (kappa 0)"),
        f"  {usl['formula']}",
        f"  how: {usl['mechanism']}",
        "  capacity by app tasks: " + ", ".join(f"{n}: {v:.1f}" for n, v in by.items()),
    ]


def _check_flags(both_ms: bool, port: int, duration: float | None, json_alone: bool) -> None:
    if both_ms:
        raise CapacityError("--endpoint-ms applies only when --service-ms is not given")
    if not 0 <= port <= 65535:
        raise CapacityError(f"--port must be between 0 and 65535, got {port}")
    if duration is not None and not duration > 0:
        raise CapacityError(f"--duration must be > 0 seconds, got {duration:g}")
    if json_alone:
        raise CapacityError("--json applies only with --explain")


commands = Commands()


@commands.command("sandbox", help=SANDBOX_HELP)
def sandbox(
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0: a free one, printed)."),
    app_tasks: int = typer.Option(2, "--app-tasks", help="App task processes (like ECS tasks)."),
    threads: int = typer.Option(4, "--threads", help="Request slots per app task (like Puma threads)."),
    backlog: int = typer.Option(64, "--backlog", help="Requests waiting per task beyond which it answers 503."),
    service_ms: float | None = typer.Option(
        None, "--service-ms", help="Mean service time of every workload endpoint, ms [default: 50]."
    ),
    endpoint_ms: list[str] = typer.Option(
        [], "--endpoint-ms", help="Per-endpoint mean, NAME=MS (only without --service-ms); repeatable."
    ),
    service_dist: str = typer.Option("lognormal", "--service-dist", help="const | exp | lognormal (sigma 0.5)."),
    cpu_ms: float = typer.Option(0.5, "--cpu-ms", help="Real CPU work inside each request/job, ms."),
    sidekiq_tasks: int = typer.Option(1, "--sidekiq-tasks", help="Sidekiq worker processes."),
    sidekiq_concurrency: int = typer.Option(5, "--sidekiq-concurrency", help="Jobs each worker runs at once."),
    job_ms: float = typer.Option(100.0, "--job-ms", help="Mean job time, ms."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Share of requests (and jobs) that fail with 500."),
    error_above_rps: float | None = typer.Option(
        None,
        "--error-above-rps",
        help="Fault: answer 500 at once while more requests than this arrived in the last second.",
    ),
    mem_growth_kb: float = typer.Option(0.0, "--mem-growth-kb", help="Memory each request leaks, KiB."),
    mem_limit_mb: float = typer.Option(512.0, "--mem-limit-mb", help="Task memory limit reported, MiB."),
    job_slowdown_per_hour: float = typer.Option(0.0, help="Fault: jobs take job_ms x (1 + this x hours run)."),
    contention_sigma: float = typer.Option(0.0, "--contention-sigma", help="Scaling bottleneck: USL sigma."),
    crosstalk_kappa: float = typer.Option(0.0, "--crosstalk-kappa", help="Scaling bottleneck: USL kappa."),
    follow_ecs: str | None = typer.Option(None, "--follow-ecs", help="CLUSTER/SERVICE: follow its desired count."),
    seed: int = typer.Option(42, "--seed", help="Seed of the synthetic records and service times."),
    records: int = typer.Option(5000, "--records", help="Synthetic appointments the sandbox knows."),
    require_keys: bool = typer.Option(
        False, "--require-keys", help=f"Demand DD-API-KEY/DD-APPLICATION-KEY from ${KEYS_ENV} (api:app)."
    ),
    explain: bool = typer.Option(False, "--explain", help="Print the capacity the parameters imply and exit."),
    as_json: bool = typer.Option(False, "--json", help="With --explain: JSON on stdout."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
    stack: str = typer.Option(
        "python", "--stack", help="python (stand-in) | puma (Redis, Puma, Sidekiq) | rails (+ Rails, PostgreSQL)."
    ),
    db_pool: int | None = typer.Option(
        None, "--db-pool", help="rails: ActiveRecord pool per app task [default: threads]."
    ),
    db_max_connections: int = typer.Option(100, "--db-max-connections", help="rails: PostgreSQL max_connections."),
    hot_rows: int = typer.Option(0, "--hot-rows", help="rails: every check-in also updates one of K shared rows."),
) -> None:
    from capacity.sandbox import SandboxConfig, truth

    _check_flags(service_ms is not None and bool(endpoint_ms), port, duration, as_json and not explain)
    cfg = SandboxConfig(
        app_tasks=app_tasks,
        threads=threads,
        backlog=backlog,
        service_ms=50.0 if service_ms is None else service_ms,
        service_dist=service_dist,
        cpu_ms=cpu_ms,
        sidekiq_tasks=sidekiq_tasks,
        sidekiq_concurrency=sidekiq_concurrency,
        job_ms=job_ms,
        error_rate=error_rate,
        error_above_rps=error_above_rps,
        mem_growth_kb=mem_growth_kb,
        job_slowdown_per_hour=job_slowdown_per_hour,
        mem_limit_mb=mem_limit_mb,
        contention_sigma=contention_sigma,
        crosstalk_kappa=crosstalk_kappa,
        follow_ecs=follow_ecs,
        seed=seed,
        records=records,
        require_keys=_keys_from_env() if require_keys else None,
        endpoint_ms=_endpoint_ms(endpoint_ms),
        stack=stack,
        db_pool=db_pool,
        db_max_connections=db_max_connections,
        hot_rows=hot_rows,
    )
    facts = truth(cfg).as_dict()
    if explain:
        typer.echo(json.dumps(facts, indent=2) if as_json else _explain_text(facts))
        return
    _serve(cfg, port, duration, facts)


def _serve(cfg: object, port: int, duration: float | None, facts: dict[str, object]) -> None:
    from capacity.sandbox.config import SandboxConfig
    from capacity.sandbox.listen import SandboxServer
    from capacity.sandbox.supervisor import serve

    assert isinstance(cfg, SandboxConfig)

    def ready(sup: SandboxServer) -> None:
        base = f"http://127.0.0.1:{sup.port}"
        now = int(time.time())
        example = quote("avg:ecs.fargate.cpu.percent{*} by {task_arn}")
        typer.echo(f"sandbox listening on {base}  (pids {', '.join(str(p) for p in [os.getpid(), *sup.pids])})")
        typer.echo(
            f"  app: {cfg.app_tasks} tasks x {cfg.threads} threads, {cfg.service_dist} service times; "
            + (
                f"pool {cfg.pool_per_task} connections, hot rows {cfg.hot_rows}; no formula (Rails and PostgreSQL)"
                if cfg.stack == "rails"
                else f"saturation by formula {facts['pool_rps']:.1f} req/s"
            )
        )
        typer.echo(f"  metrics (Datadog v1 query API): {base}/api/v1/query?from={now - 60}&to={now}&query={example}")
        typer.echo("  stop with Ctrl-C" + (f" (or after {duration:g} s)" if duration else ""))

    try:
        asyncio.run(serve(cfg, port, on_ready=ready, duration_s=duration))
    except KeyboardInterrupt:
        typer.echo("sandbox stopped", err=True)
