"""Tag filters from ``[metrics]`` settings: the values of a query template's ``$placeholders``.

Tag names and scopes differ between setups (``ecs_service`` vs ``ecs_service_name``, CloudWatch's
``clustername``, APM's ``service``/``env``), so scopes are built from settings, never constants.
"""

from __future__ import annotations

from capacity.plan.experiment import MetricsSettings

CONTAINER_TAG = "ecs_container_name"
"""The agent's tag naming a Fargate task's container (the app, the agent, the log router...)."""


def scope(*terms: str) -> str:
    """Join non-empty tag filters with commas; ``*`` (everything) when none is left."""
    parts = [p.strip() for t in terms for p in t.split(",") if p.strip()]
    return ",".join(parts) if parts else "*"


def service_scope(
    settings: MetricsSettings, service: str, *, cluster_tag: str | None = None, service_tag: str | None = None
) -> str:
    """The tag filter for one ECS service; tag names default to the settings' (the agent's)."""
    return scope(
        f"{cluster_tag or settings.cluster_tag}:{settings.cluster}" if settings.cluster else "",
        f"{service_tag or settings.service_tag}:{service}" if service else "",
        settings.extra_scope,
    )


def placeholders(settings: MetricsSettings) -> dict[str, str]:
    """Values for ``$app_scope``, ``$app_container_scope``, ``$sidekiq_scope``, ``$queue_scope``,
    ``$apm_scope`` and the raw names."""
    app = service_scope(settings, settings.app_service)
    sidekiq = service_scope(settings, settings.sidekiq_service)
    return {
        "app_scope": app,
        "app_container_scope": scope(app, f"{CONTAINER_TAG}:{settings.app_container}"),
        "sidekiq_scope": sidekiq,
        "sidekiq_container_scope": scope(sidekiq, f"{CONTAINER_TAG}:{settings.sidekiq_container}"),
        "queue_scope": str(settings.queue_scope or sidekiq),
        "apm_scope": scope(
            f"service:{settings.apm_service}" if settings.apm_service else "",
            f"env:{settings.apm_env}" if settings.apm_env else "",
        ),
        "cluster": settings.cluster,
        "app_service": settings.app_service,
        "sidekiq_service": settings.sidekiq_service,
        "app_container": settings.app_container,
        "sidekiq_container": settings.sidekiq_container,
        "extra_scope": settings.extra_scope,
    }
