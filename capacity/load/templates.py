"""Path and body templates with ``{name}`` placeholders, compiled once and checked once per run.

``str.format`` cannot be used on JSON bodies (their own braces would be read as fields), so only
``{identifier}`` is a placeholder; every other character, braces included, is literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from capacity.core.errors import CapacityError

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Template:
    """Literal parts interleaved with field names: ``parts[0] + v(fields[0]) + parts[1] + ...``."""

    parts: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def is_constant(self) -> bool:
        return not self.fields

    def render(self, values: Mapping[str, str]) -> str:
        if not self.fields:
            return self.parts[0]
        out = [self.parts[0]]
        for name, lit in zip(self.fields, self.parts[1:], strict=True):
            out.append(values[name])
            out.append(lit)
        return "".join(out)


def compile_template(text: str, *, allowed: tuple[str, ...], where: str) -> Template:
    """Split ``text`` at its placeholders; an unknown placeholder is a ``CapacityError`` naming ``where``."""
    parts: list[str] = []
    fields: list[str] = []
    pos = 0
    for m in _FIELD.finditer(text):
        name = m.group(1)
        if name not in allowed:
            known = ", ".join("{" + a + "}" for a in allowed) or "none: test_data.source is 'none'"
            raise CapacityError(f"{where}: unknown placeholder {{{name}}} (known: {known})")
        parts.append(text[pos : m.start()])
        fields.append(name)
        pos = m.end()
    parts.append(text[pos:])
    return Template(tuple(parts), tuple(fields))
