"""``searec serve``: load a run once and answer HTTP on it until interrupted."""

from __future__ import annotations

import gc

from searec.inference.serving.app import create_app
from searec.inference.serving.limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY,
    deadline_protocol,
)
from searec.inference.serving.service import RunService

DEFAULT_MAX_CONNECTIONS = 256  # open connections and requests in flight; more: 503
DEFAULT_RELOAD_INTERVAL = 5.0  # seconds between looks for an item table added meanwhile


def serve(run: str, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 1000,
          device: str = "cpu", log_level: str = "info", approximate: bool = False,
          max_body: int = DEFAULT_MAX_BODY, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
          body_timeout: float = DEFAULT_BODY_TIMEOUT,
          max_connections: int = DEFAULT_MAX_CONNECTIONS,
          reload_interval: float = DEFAULT_RELOAD_INTERVAL) -> None:
    """Load ``run`` once and serve it until interrupted, with every input bounded: ids per
    request (``max_batch``), body bytes (``max_body``), seconds for a request's headers and
    body to arrive, and connections at once (``max_connections``; uvicorn answers 503
    beyond). Every ``reload_interval`` seconds (0: never) the run's item-table pointer is
    read, and a table published since by ``searec items add`` is served from then on."""
    from searec.inference.serving.app import _require_fastapi

    _require_fastapi()
    import uvicorn

    service = RunService(run, max_batch=max_batch, device=device, approximate=approximate)
    app = create_app(service, max_body=max_body, body_timeout=body_timeout)
    if reload_interval > 0:
        service.watch(reload_interval)
    # What was loaded lives as long as the server: out of the garbage collector's sight,
    # a request that allocates many objects (a large JSON body) no longer makes it walk
    # all of them (parsing a 1 MiB body of small lists: 200 ms -> 33 ms on TikTok's run)
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                http=deadline_protocol(header_timeout, body_timeout),  # type: ignore[arg-type]
                limit_concurrency=max_connections, timeout_keep_alive=5)
