"""Small HTTP servers on 127.0.0.1 for misbehaviour a real Prefect server cannot produce."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@contextmanager
def serve(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """An HTTP server whose every request is answered by `respond(handler)`; yields its API URL."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            respond(self)

        do_GET = do_POST = do_PATCH = do_DELETE = _any

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def login_page(handler: BaseHTTPRequestHandler) -> None:
    """What a proxy or a login portal in front of the API sends: 200 and an HTML page."""
    answer(handler, 200, b"<html><body>Please sign in</body></html>", "text/html")


def empty_object(handler: BaseHTTPRequestHandler) -> None:
    answer(handler, 200, b"{}", "application/json")


@contextmanager
def trickling(part: str) -> Iterator[str]:
    """A server that sends its status line and headers (part="headers"), or then its body
    (part="body"), one byte a second: no single read ever waits long enough to time out."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        handler.rfile.read(length)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
        try:
            if part == "body":
                handler.wfile.write(head)
                handler.wfile.flush()
                head = b""
            for byte in head + b"0" * 300:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(1)
        except OSError:
            pass  # the client gave up

    with serve(respond) as url:
        yield url


class Proxy:
    """What a proxy in front of a real server does to one request: answer it itself, or
    forward it after a delay. `rule(method, path, body)` returns None (forward at once), a
    number (wait that many seconds, then forward) or (status, detail) (answer that)."""

    def __init__(self, upstream: str, rule: Callable[[str, str, bytes], object]):
        self.upstream = upstream
        self.rule = rule
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = handler.path.removeprefix("/api")
        self.seen.append((handler.command, path))
        action = self.rule(handler.command, path, body)
        if isinstance(action, tuple):
            status, detail = action
            answer(handler, status, json.dumps({"detail": detail}).encode(), "application/json")
            return
        if action:
            time.sleep(float(action))  # type: ignore[arg-type]
        forwarded = httpx.request(
            handler.command,
            self.upstream + path,
            content=body or None,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        with contextlib.suppress(OSError):  # the client gave up waiting
            answer(handler, forwarded.status_code, forwarded.content, "application/json")


@contextmanager
def proxy(upstream: str, rule: Callable[[str, str, bytes], object]) -> Iterator[tuple[str, Proxy]]:
    """A proxy on 127.0.0.1 in front of a real server; yields its API URL and the Proxy."""
    front = Proxy(upstream, rule)
    with serve(front.respond) as url:
        yield url, front


@contextmanager
def refusing_proxy(
    upstream: str, refuse: Callable[[str, str, bytes], str | None]
) -> Iterator[tuple[str, list]]:
    """Forwards to a real server, except requests for which `refuse(method, path, body)` returns
    a reason: those get a 422 with it, as Prefect answers a body it refuses. Yields the URL and
    the log of (method, path) of every request."""
    seen: list[tuple[str, str]] = []

    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = handler.path.removeprefix("/api")
        seen.append((handler.command, path))
        if reason := refuse(handler.command, path, body):
            answer(handler, 422, f'{{"detail": "{reason}"}}'.encode(), "application/json")
            return
        forwarded = httpx.request(
            handler.command,
            upstream + path,
            content=body or None,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        answer(handler, forwarded.status_code, forwarded.content, "application/json")

    with serve(respond) as url:
        yield url, seen


@contextmanager
def not_http(reply: bytes = b"SSH-2.0-OpenSSH_9.6\r\n") -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers every connection with `reply`, which is not HTTP:
    what a port taken by another program (or a server half up) sends. Yields an API URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection, contextlib.suppress(OSError):
                connection.recv(65536)
                connection.sendall(reply)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    finally:
        stop.set()
        thread.join()
        listener.close()
