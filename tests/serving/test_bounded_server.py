"""`searec serve` against clients that send too much, too slowly or nonsense: bodies
refused before they are read, every id list counted, connections that stall closed, one
error shape, ids checked as the catalogue's ids, no file written by answering, offline API
docs, Prometheus metrics; and a fuzzer over the served OpenAPI schema."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import searec
from searec.inference.recommend import UnknownIdError, user_indices
from searec.inference.serving import RequestError, RunService
from searec.inference.serving.process import free_port, stop_server
from tests.serving.conftest import start_server

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-cache")


@pytest.fixture(scope="module")
def strict_server(shop_run, cache) -> Iterator[str]:
    """A server with small limits and short timeouts, its kNN cache in ``cache``."""
    port = free_port()
    os.environ["SEAREC_CACHE"], before = str(cache), os.environ.get("SEAREC_CACHE")
    try:
        proc = start_server(shop_run, port, "--max-batch", "50", "--max-body", "20000",
                            "--header-timeout", "1", "--body-timeout", "1.5")
    finally:
        if before is None:
            del os.environ["SEAREC_CACHE"]
        else:
            os.environ["SEAREC_CACHE"] = before
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _raw(url: str, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers until it closes
    the connection or ``wait`` seconds pass."""
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_a_large_body_is_refused_before_it_is_read(strict_server):
    t0 = time.perf_counter()
    answer = _raw(strict_server, b"POST /recommend HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
    assert time.perf_counter() - t0 < 2  # answered and closed without waiting for 10 MB
    assert answer.startswith(b"HTTP/1.1 413 ") and b"at most 20,000 bytes" in answer
    # a chunked body is counted as it arrives
    chunk = b'{"users": [' + b'"A0003Z", ' * 3000
    answer = _raw(strict_server, b"POST /recommend HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ") and b'"error"' in answer
    health = httpx.get(f"{strict_server}/health", timeout=5)
    assert health.json() == {"status": "ok"}


def test_every_id_list_counts_against_the_batch_limit(strict_server, service):
    body = {"users": ["A0003Z"] * 20, "exclude": ["B000000001"] * 31}
    reply = httpx.post(f"{strict_server}/recommend", json=body)
    assert reply.status_code == 413
    assert "20 users + 31 excluded items in one request; at most 50 ids" in reply.json()["error"]
    rows = [[0.5] * 16] * 31
    reply = httpx.post(f"{strict_server}/items/score",
                       json={"features": {"image": rows}, "users": ["A0003Z"] * 20})
    assert reply.status_code == 413 and "31 new items" in reply.json()["error"]
    with pytest.raises(RequestError, match=r"40 = 1,600 recommendations; at most 1,000") as err:
        RunService(service.run_dir, max_batch=50, max_results=1000).recommend(
            ["A0003Z"] * 40, k=40)
    assert err.value.status == 413


def test_stalled_connections_are_closed(strict_server):
    """Headers that never finish are dropped after --header-timeout; a body that never
    arrives gets 408 after --body-timeout; 40 such connections do not stop /health."""
    socks = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", _port(strict_server)), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # no blank line: never done
        socks.append(sock)
    t0 = time.perf_counter()
    assert httpx.get(f"{strict_server}/health", timeout=5).status_code == 200
    assert time.perf_counter() - t0 < 1
    for sock in socks:
        assert sock.recv(100) == b""  # closed by the server
        sock.close()
    assert time.perf_counter() - t0 < 5
    t0 = time.perf_counter()
    answer = _raw(strict_server, b"POST /recommend HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"us",
                  wait=10)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"did not arrive within 1.5 s" in answer and 1.4 < time.perf_counter() - t0 < 5


def test_malformed_http_gets_the_same_error_shape(strict_server):
    answer = _raw(strict_server, b"GET /health HTTP/1.1\r\nHost x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head
    assert body.startswith(b'{"error": "malformed HTTP request')


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("GET", "/nowhere", None, 404, "no such route"),
    ("DELETE", "/recommend", None, 405, "method not allowed"),
    ("POST", "/recommend", b'{"users": ["\xff\xfe"]}', 400, "not valid JSON"),
    ("POST", "/recommend", b"\x00\x01", 400, "not valid JSON"),
    ("GET", "/users/%C2%B2/recommendations", None, 404, "unknown user"),
    ("GET", "/users/" + "9" * 5000 + "/recommendations", None, 422,
     "at most 256 characters"),
    ("POST", "/recommend", {"users": [10**30]}, 422, "less than or equal to"),
])
def test_every_error_has_one_shape(strict_server, method, path, body, status, message):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    reply = httpx.request(method, f"{strict_server}{path}", **kwargs,
                          headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    assert list(reply.json()) == ["error"] and message in reply.json()["error"], reply.text
    if status == 405:
        assert "POST" in reply.headers["allow"]


def test_index_ids_are_ascii_digits_of_catalogue_size(tiny):
    assert list(user_indices(["0", "007", "119"], tiny)) == [0, 7, 119]
    for token in ["²", "١", "9" * 5000, "-1", "+1", "1.0", "120", " 1", ""]:
        with pytest.raises(UnknownIdError, match=r"expected a user index in 0\.\.119"):
            user_indices([token], tiny)


def test_info_docs_version_and_metrics(strict_server, shop_run):
    info = httpx.get(f"{strict_server}/info").json()
    assert info["run"] == shop_run.name
    assert not any(str(shop_run.parent) in str(v) for v in info.values())
    schema = httpx.get(f"{strict_server}/openapi.json").json()
    assert schema["info"]["version"] == searec.__version__
    page = httpx.get(f"{strict_server}/docs").text
    assert "https://" not in page and "swagger-ui-bundle.js" in page
    script = page.split('src="', 1)[1].split('"', 1)[0]
    asset = httpx.get(f"{strict_server}{script}")
    assert asset.status_code == 200 and len(asset.content) > 100_000  # served, not a CDN
    httpx.post(f"{strict_server}/recommend", json={"users": ["A0003Z"], "k": 3})
    httpx.get(f"{strict_server}/nowhere")
    metrics = httpx.get(f"{strict_server}/metrics").text
    assert 'http_requests_total{handler="/recommend",method="POST",status="2xx"}' in metrics
    assert 'http_request_duration_seconds_bucket{handler="/recommend"' in metrics
    assert 'status="4xx"' in metrics


def _tree(*roots: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def test_answering_reads_and_writes_no_file(strict_server, shop_run, cache):
    """Scoring new items builds their graphs in memory: three requests leave the run
    folder and the kNN cache as they were."""
    before = _tree(shop_run, cache)
    assert any("knn-" in p for p in before)  # the server cached its graphs at start-up
    rows = np.random.default_rng(0).normal(size=(3, 16)).round(3).tolist()
    for _ in range(3):
        reply = httpx.post(f"{strict_server}/items/score",
                           json={"features": {"image": rows}, "users": ["A0003Z"]})
        assert reply.status_code == 200, reply.text
        httpx.post(f"{strict_server}/recommend", json={"users": ["A0003Z"]})
    assert _tree(shop_run, cache) == before


def test_scoring_new_items_is_one_at_a_time(service):
    rows = {"image": np.ones((1, 16), np.float32)}
    service._scoring.acquire()
    try:
        with pytest.raises(RequestError, match="busy scoring new items") as err:
            service.score_items(rows, ["A0003Z"])
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
    finally:
        service._scoring.release()
    assert len(service.score_items(rows, ["A0003Z"])[0]["scores"]) == 1


def test_the_command_line_defaults_are_the_servers():
    from searec.cli import build_parser
    from searec.inference.serving import limits, server

    args = build_parser().parse_args(["serve", "--run", "x"])
    assert args.max_body == limits.DEFAULT_MAX_BODY
    assert args.header_timeout == limits.DEFAULT_HEADER_TIMEOUT
    assert args.body_timeout == limits.DEFAULT_BODY_TIMEOUT
    assert args.max_connections == server.DEFAULT_MAX_CONNECTIONS


@pytest.fixture(scope="module")
def service(shop_run) -> RunService:
    return RunService(shop_run, max_batch=50)


def test_connections_beyond_the_limit_get_503_in_the_error_shape(shop_run):
    """uvicorn refuses requests beyond --max-connections; the answer is searec's JSON."""
    import json

    port = free_port()
    proc = start_server(shop_run, port, "--max-connections", "2", "--header-timeout", "5")
    url = f"http://127.0.0.1:{port}"
    held = []
    try:
        for _ in range(2):  # open connections, their requests never finished
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        time.sleep(0.3)
        answer = _raw(url, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"content-type: application/json" in head.lower()
        assert b"retry-after: 1" in head.lower()
        assert "--max-connections" in json.loads(body)["error"]
    finally:
        for sock in held:
            sock.close()
        stop_server(proc)
