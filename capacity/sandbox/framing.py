"""Framing between the supervisor and its task processes: 4-byte length + a JSON object.

Internal and local (a Unix socket in a private temp folder); it plays the part of the load balancer
to task hop, Redis for the job queue and DogStatsD for metrics.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

_HEADER = struct.Struct("!I")
MAX_FRAME = 16 * 1024 * 1024


def encode(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


async def read_msg(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    try:
        head = await reader.readexactly(_HEADER.size)
        (n,) = _HEADER.unpack(head)
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes is too large")
        body = await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    msg = json.loads(body)
    if not isinstance(msg, dict):
        raise ValueError("frame is not a JSON object")
    return msg


async def messages(reader: asyncio.StreamReader) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Each message with its ``op``, until the stream ends (the receive loop of both ends)."""
    while True:
        msg = await read_msg(reader)
        if msg is None:
            return
        yield str(msg.get("op")), msg
