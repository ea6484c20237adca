"""Handing test records out during a stage: cycling for reads, once each for consuming endpoints.

Running out is reported (the arrival becomes a ``test-data exhausted`` outcome), never silently
wrapped around. The records themselves come from ``capacity.plan.testdata``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from capacity.plan.testdata import Record


class RecordsExhausted(Exception):
    """An endpoint that consumes records asked for one after all were used."""


def stripe(records: Sequence[Record], index: int, count: int) -> list[Record]:
    """This worker's disjoint share, so consuming endpoints never reuse a record across workers."""
    return list(records[index::count]) if count > 1 else list(records)


class RecordPool:
    """Hands out records: cycling for read-style endpoints, once each for consuming ones."""

    def __init__(self, records: Sequence[Record], seed: int = 0) -> None:
        if not records:
            raise ValueError("no test records")
        self._records = list(records)
        random.Random(seed).shuffle(self._records)
        self._cycle = self._cycler()
        self._next_unused = 0

    def _cycler(self) -> Iterator[Record]:
        while True:
            yield from self._records

    def shared(self) -> Record:
        """Any record; the same one may come again."""
        return next(self._cycle)

    def take(self) -> Record:
        """A record no consuming request has used yet; raises ``RecordsExhausted`` when none remain."""
        if self._next_unused >= len(self._records):
            raise RecordsExhausted(f"all {len(self._records)} test records were consumed")
        rec = self._records[self._next_unused]
        self._next_unused += 1
        return rec
