"""The real HTTP API served from a thread of a tool's own process (uvicorn on 127.0.0.1, a free
port), so a benchmark times requests through the whole stack without a second process."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def serve_in_thread(esup: Any, name: str, timeout: float = 30.0) -> tuple[Any, threading.Thread, int]:
    """Start serving ``esup``; returns (server, thread, port). Stop with ``server.should_exit =
    True`` and ``thread.join()``."""
    import uvicorn

    from api.app import create_app

    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every response waited for the client's delayed ACK (about 40 ms a request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(esup), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, port


def stop(server: Any, thread: threading.Thread | None, timeout: float = 15.0) -> None:
    """Stop what ``serve_in_thread`` started (either may be None: it did not start)."""
    if server is not None:
        server.should_exit = True
    if thread is not None:
        thread.join(timeout)
