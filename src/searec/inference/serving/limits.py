"""What keeps one client of ``searec serve`` from stalling the others.

- :class:`BoundedBody`, ASGI middleware: a request body larger than the limit is refused
  with 413 before it is read (a larger ``Content-Length``) or as soon as it passes the
  limit (chunked); a body that does not arrive within the deadline gets 408. Both close
  the connection.
- :func:`deadline_protocol`, the HTTP/1.1 protocol uvicorn runs with a clock: a
  connection whose request line and headers do not arrive within ``header_timeout`` is
  closed, and so is one whose whole request (body included, read by the application or
  not) is not in after ``body_timeout`` more. uvicorn itself waits for headers forever.
  Malformed HTTP gets 400 with ``{"error": ...}`` like every other refusal.

The JSON parse of a body happens on the event loop (FastAPI parses before it hands a
request to a worker thread), so the body limit also bounds how long one request can hold
the loop; the work itself runs in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 2**20  # bytes: 1,000 ids easily, or ~12 items of 4,096-d features
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds for the request line and headers
DEFAULT_BODY_TIMEOUT = 30.0  # seconds for the body, once the headers are in


class BodyRejected(Exception):
    """A request body refused while it was being read (413 too large, 408 too slow)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[BodyRejected], tuple[int, str]]:
        return type(self), (self.status, str(self))  # picklable, as searec.errors.DataError


async def send_error(send: Send, status: int, message: str,
                     headers: dict[str, str] | None = None, close: bool = False) -> None:
    """A ``{"error": message}`` JSON answer, straight on the ASGI ``send``."""
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BoundedBody:
    """ASGI middleware bounding a request body's size and the time it takes to arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY,
                 timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    def too_large(self, size: str) -> str:
        return (f"the request body is {size}; at most {self.max_bytes:,} bytes "
                "(searec serve --max-body)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            if not (declared.isdigit() and len(declared) <= 18):
                await send_error(send, 400, "Content-Length is not a number", close=True)
                return
            if int(declared) > self.max_bytes:
                await send_error(send, 413, self.too_large(f"{int(declared):,} bytes"),
                                 close=True)
                return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyRejected(408, f"the request body did not arrive within "
                                   f"{self.timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyRejected(413, self.too_large(f"over {received:,} bytes"))
            return message

        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except BodyRejected as exc:  # where the application did not answer it itself
            if not started:
                await send_error(send, exc.status, str(exc), close=True)


BUSY = ("too many connections at once (searec serve --max-connections); retry shortly")


async def busy(scope: Scope, receive: Receive, send: Send) -> None:
    """What a request beyond ``--max-connections`` gets: 503 in the one error shape."""
    await send_error(send, 503, BUSY, headers={"Retry-After": "1"}, close=True)


def deadline_protocol(header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                      body_timeout: float = DEFAULT_BODY_TIMEOUT) -> type:
    """uvicorn's h11 protocol with a deadline on each request's arrival (see the module
    docstring); pass it as ``uvicorn.run(..., http=...)``. In this process, a request
    beyond uvicorn's ``limit_concurrency`` is answered by :func:`busy` instead of
    uvicorn's plain-text 503."""
    import h11
    from uvicorn.protocols.http import h11_impl
    from uvicorn.protocols.http.h11_impl import H11Protocol

    # uvicorn looks this answer up by name in the h11 module for each refused request;
    # it has no option for it (uvicorn 0.x), and serve() is this process's only server
    h11_impl.service_unavailable = busy  # type: ignore[assignment]

    class DeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout)

        def handle_events(self) -> None:
            before = self.conn.their_state
            super().handle_events()
            state = self.conn.their_state
            if before is h11.IDLE and state is h11.SEND_BODY:
                self._arm(body_timeout + 1.0)  # the application's own 408 comes first
            elif state is not h11.IDLE and state is not h11.SEND_BODY:
                self._disarm()  # the whole request is in (or the connection is done)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm(header_timeout)  # the next request on this connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            """Malformed HTTP, answered before any application sees it: in searec's one
            error shape too."""
            body = json.dumps({"error": f"malformed HTTP request ({msg})"}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return DeadlineProtocol
