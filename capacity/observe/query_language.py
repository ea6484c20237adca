"""The Datadog metric query language, parsed once for everyone who reads it.

``[avg|max|min|sum:]metric{scope} [by {tag,...}]`` with ``.rollup([fn,] [seconds])``,
``.as_count()``, ``.as_rate()`` and ``.fill(...)``; scope ``*`` or comma-separated (AND)
``key:value`` terms, ``!`` negation and ``*`` wildcards; several queries separated by top-level
commas. The sandbox's query endpoint evaluates what :func:`parse_query` returns, the metrics source
reads a query's head (:func:`query_head`: its space aggregator and metric, to pick a rollup and to
match answers to queries) and the tests' fake Datadog parses with it too. Standard library only, so
every layer can import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

AGGREGATORS = ("avg", "max", "min", "sum")
FUNCTIONS = ("rollup", "as_count", "as_rate", "fill")
"""The functions a query may chain; anything else is an error, as it would be for an unknown name."""


class QueryError(ValueError):
    """The query text cannot be parsed; the message is what Datadog would answer in ``errors``."""


@dataclass(frozen=True)
class TagFilter:
    """One scope term: ``key:pattern`` (or a whole-tag pattern when ``key`` is None), maybe negated."""

    key: str | None
    pattern: str
    negate: bool = False

    def matches(self, tags: Iterable[str]) -> bool:
        hit = False
        for tag in tags:
            if self.key is None:
                hit = fnmatchcase(tag, self.pattern)
            else:
                k, _, v = tag.partition(":")
                hit = k == self.key and fnmatchcase(v, self.pattern)
            if hit:
                break
        return hit != self.negate


@dataclass(frozen=True)
class QueryHead:
    """What precedes the grouping and functions: enough to know what a query asks for."""

    space_agg: str
    metric: str
    scope: str


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    space_agg: str
    metric: str
    scope: tuple[str, ...]
    filters: tuple[TagFilter, ...]
    group_by: tuple[str, ...]
    rollup_fn: str | None = None
    rollup_s: int | None = None
    as_rate: bool = False
    functions: tuple[str, ...] = field(default=())


_HEAD = r"^\s*(?:(?P<agg>[a-z]+):)?(?P<metric>[A-Za-z][A-Za-z0-9_.]*)\s*\{(?P<scope>[^{}]*)\}"
_HEAD_RE = re.compile(_HEAD)
_QUERY_RE = re.compile(_HEAD + r"(?:\s*by\s*\{(?P<by>[^{}]*)\})?(?P<fns>(?:\s*\.[a-z_]+\([^()]*\))*)\s*$")
_FN_RE = re.compile(r"\.([a-z_]+)\(([^()]*)\)")


def query_head(text: str) -> QueryHead | None:
    """The head of a query (whatever follows it), or None when the text does not start like a query."""
    m = _HEAD_RE.match(text)
    if not m:
        return None
    agg = m.group("agg") or "avg"
    return QueryHead(agg, m.group("metric"), m.group("scope")) if agg in AGGREGATORS else None


def split_queries(text: str) -> list[str]:
    """Split ``q1,q2`` at commas outside braces and parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out = [p.strip() for p in parts]
    if any(not p for p in out):
        raise QueryError(f"Error parsing query: empty query in {text!r}")
    return out


def _parse_scope(scope: str) -> tuple[tuple[str, ...], tuple[TagFilter, ...]]:
    terms = [t.strip() for t in scope.split(",") if t.strip()]
    if not terms:
        raise QueryError("Error parsing query: empty scope, use {*}")
    filters: list[TagFilter] = []
    kept: list[str] = []
    for term in terms:
        if term == "*":
            continue
        kept.append(term)
        negate = term.startswith("!")
        body = term[1:] if negate else term
        if not body:
            raise QueryError(f"Error parsing query: bad scope term {term!r}")
        key, sep, value = body.partition(":")
        filters.append(TagFilter(key if sep else None, value if sep else body, negate))
    return tuple(kept), tuple(filters)


def _rollup(args: list[str], text: str) -> tuple[str | None, int | None]:
    fn: str | None = None
    seconds: int | None = None
    for a in args:
        if a in AGGREGATORS:
            fn = a
        elif a.isdigit() and int(a) > 0:
            seconds = int(a)
        else:
            raise QueryError(f"Error parsing query: bad rollup argument {a!r} in {text!r}")
    return fn, seconds


def parse_query(text: str) -> ParsedQuery:
    """One whole query; raises :class:`QueryError` for text Datadog would reject."""
    m = _QUERY_RE.match(text)
    if not m:
        raise QueryError(f"Error parsing query: {text!r} is not 'agg:metric{{scope}} [by {{tags}}]'")
    agg = m.group("agg") or "avg"
    if agg not in AGGREGATORS:
        raise QueryError(f"Error parsing query: unknown aggregator {agg!r} in {text!r}")
    scope, filters = _parse_scope(m.group("scope"))
    by = tuple(t.strip() for t in (m.group("by") or "").split(",") if t.strip())
    rollup_fn: str | None = None
    rollup_s: int | None = None
    fns: list[str] = []
    for name, args_text in _FN_RE.findall(m.group("fns") or ""):
        if name not in FUNCTIONS:
            raise QueryError(f"Error parsing query: unsupported function .{name}() in {text!r}")
        fns.append(name)
        if name == "rollup":
            rollup_fn, rollup_s = _rollup([a.strip() for a in args_text.split(",") if a.strip()], text)
    return ParsedQuery(
        text.strip(), agg, m.group("metric"), scope, filters, by, rollup_fn, rollup_s, "as_rate" in fns, tuple(fns)
    )
