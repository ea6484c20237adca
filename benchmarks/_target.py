"""A minimal keep-alive HTTP target for the benchmarks, run in its own process.

``python benchmarks/_target.py PORT DELAY_S``: answers every request with 200 after DELAY_S;
``GET /__count`` returns the number of requests served so far (so every tool is counted the same
way, at the server).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

COUNT = 0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def handle(sock: socket.socket, _addr: object, delay: float) -> None:
    global COUNT
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            clen = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    clen = int(line[15:])
            if len(buf) < end + 4 + clen:
                break
            buf = buf[end + 4 + clen :]
            if head.startswith(b"GET /__count"):
                body = str(COUNT).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                continue
            COUNT += 1
            if delay:
                gevent.sleep(delay)
            sock.sendall(OK)


class Target:
    """Start the target in a subprocess on a free port; ``count()`` reads its request counter."""

    def __init__(self, delay_s: float = 0.0) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.port), str(delay_s)])
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self.count()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("benchmark target did not start")

    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/__count", timeout=5) as r:
            return int(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


if __name__ == "__main__":
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    StreamServer(("127.0.0.1", port), lambda s, a: handle(s, a, delay), backlog=1024).serve_forever()
