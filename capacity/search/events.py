"""Datadog events that mark a run on the team's dashboards (run start, each stage, the result).

Events are a courtesy to whoever looks at the graphs: a failure to post one is logged, never fatal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from capacity.core.errors import CapacityError
from capacity.plan.experiment import Experiment
from capacity.store import RunStore

if TYPE_CHECKING:
    from capacity.observe.source import MetricsSource

log = logging.getLogger("capacity.search")


class RunEvents:
    """Posts the run's events and keeps their ids in the manifest (so the report can link them)."""

    def __init__(self, source: MetricsSource | None, exp: Experiment, store: RunStore) -> None:
        self._source = source if exp.metrics.events else None
        self._tags = [f"run_id:{store.run_id}", f"experiment:{exp.name}"]
        self._store = store
        self._ids: list[dict[str, str]] = []

    def post(self, title: str, text: str, tags: list[str]) -> None:
        if self._source is None:
            return
        try:
            event_id = self._source.post_event(f"capacity: {title}", text, [*self._tags, *tags])
        except CapacityError as exc:  # events are a courtesy; never stop a run for them
            log.warning("datadog event failed: %s", exc)
            return
        if event_id:
            log.info("datadog event %s: %s", event_id, title)
            self._ids.append({"id_str": event_id, "title": title})
            self._store.update_manifest(datadog_events=list(self._ids))
