"""Where the retry walks run: a database of their own (their requests commit for real, so they must not leave rows
that the other tests of the session would count) and a real HTTP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from shared.migrations import upgrade
from shared.testing.plugin import CHECKOUT_TAG, recreate_database


async def committed_database(service: str) -> str:
    """A fresh database for `service`, built by its migrations, for tests whose requests really commit."""
    url = await recreate_database(f"test_{service}_retries_{CHECKOUT_TAG}")
    await upgrade(service, url)
    return url


@asynccontextmanager
async def served(app: FastAPI, timeout: float = 20.0) -> AsyncIterator[httpx.AsyncClient]:
    """Serve `app` with uvicorn on a free loopback port (lifespan included) and give a client of it.

    A real server matters here: it sends each response as soon as the app sends it, where httpx's ASGI transport
    waits for the whole app call, so a response sent before its key was stored is only visible this way.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Idle keep-alive connections stay open for the whole test: a server closing one just as the client reuses
    # it (uvicorn's default is 5 s, easily reached on a busy machine) fails a POST with a ReadError.
    # log_config=None: uvicorn leaves the process's logging as the tests configured it.
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, timeout_keep_alive=600)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(timeout):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout, limits=limits
        ) as c:
            yield c
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=timeout)
        sock.close()
