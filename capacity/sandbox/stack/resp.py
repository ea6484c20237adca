"""Just enough of the Redis protocol (RESP2) for the collector's few commands, over asyncio.

The collector asks Redis what the Datadog Redis check would (a list's length, its oldest entry);
a client library would be a dependency for two commands.
"""

from __future__ import annotations

import asyncio
import contextlib

Reply = int | bytes | str | None | list["Reply"]


class RedisReplyError(RuntimeError):
    """Redis answered ``-ERR ...``."""


def encode_command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    line = (await reader.readline()).rstrip(b"\r\n")
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisReplyError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected redis reply {line[:40]!r}")


class RedisConnection:
    """One connection; commands are sent one at a time (the collector is the only user)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> RedisConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def command(self, *args: str) -> Reply:
        self._writer.write(encode_command(*args))
        await self._writer.drain()
        return await read_reply(self._reader)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
