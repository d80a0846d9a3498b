"""A few lines of HTTP/1.1: GETs over one kept-alive socket (a unix socket or TCP), for the
Docker Engine API and for the checks a warm `up` makes of the stack's own API. Importing
httpx, or http.client with email and ssl, costs more than a whole `status` should; anything
beyond a plain GET of an http:// URL (cookies, POST, TLS) goes through httpx.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class Connection:
    """GETs on one socket, kept open while the server allows."""

    def __init__(self, address: str | tuple[str, int], timeout: float) -> None:
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def get(
        self, path: str, host: str = "docker", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, bool]:
        """(status, body, whether the connection can be used again)."""
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        found = {}
        while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            found[key.strip().lower()] = value.strip().lower()
        keep = found.get("connection") != "close"
        if found.get("transfer-encoding") == "chunked":
            body = bytearray()
            while size := int(self.reader.readline().split(b";")[0], 16):
                body += self.reader.read(size)
                self.reader.readline()
            while self.reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return status, bytes(body), keep
        if "content-length" in found:
            return status, self.reader.read(int(found["content-length"])), keep
        return status, self.reader.read(), False


@dataclass(frozen=True)
class Response:
    """What the callers of httpx.Client.get read of a response, for a plain GET."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def plain_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
    """One GET of an http:// URL on a connection of its own; OSError when it fails."""
    parts = urlsplit(url)
    connection = Connection((parts.hostname or "localhost", parts.port or 80), timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"Connection": "close", **(headers or {})}
        status, body, _ = connection.get(path, parts.netloc, sent)
    except (ValueError, IndexError) as exc:  # not HTTP at all
        raise ConnectionError(f"GET {url}: not an HTTP answer") from exc
    finally:
        connection.close()
    return Response(status, body)


def is_transport_error(exc: BaseException) -> bool:
    """An error of getting an answer at all, from this module or from httpx (told by its
    module, so that httpx is imported only where it is used)."""
    return isinstance(exc, OSError) or type(exc).__module__.startswith("httpx")
