"""`searec serve` under hostile clients: do the others still get their answers in time?

    python benchmarks/serve_hostile.py --run runs/shop [--rounds 3] [--per-client 10]
        [--name serve_hostile]

A real `searec serve` on a free loopback port; 32 concurrent clients each send
``--per-client`` GET /users/{user}/recommendations?k=20 per round (their own connection
each). Rounds alternate: the clients alone, then the clients while hostile requests are in
flight the whole round; the latencies of each condition are pooled over ``--rounds``
rounds. Hostile requests, each on its own connection, sent again as soon as one ends:

- oversized: a POST announcing a 50 MB body, then sending it (64 KiB every 10 ms);
- slow: a POST announcing 1,000 bytes and sending one every 0.2 s;
- near-limit (its own scenario): a POST of a badly typed JSON body just under --max-body,
  which the server must parse before it can refuse it (422).

Reported per condition: p50 / p99 / max latency of the well-behaved requests, their
count, the hostile requests completed and the statuses they got. Writes
benchmarks/results/<name>.{json,md}. ``tests/serving/test_hostile_clients.py`` runs the
same measurement (``--url``, in a process of its own, as here: a large client process's
garbage collections would land in the latencies), smaller, and asserts p99 with
oversized + slow <= 2x p99 alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def clients_round(base: str, users: list[str], clients: int, per_client: int) -> list[float]:
    """Latencies (s) of ``clients`` threads x ``per_client`` top-20 GETs; all must be 200."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def worker(offset: int) -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=60) as client:
            start.wait()
            for n in range(per_client):
                user = users[(offset * per_client + n) % len(users)]
                t0 = time.perf_counter()
                reply = client.get(f"/users/{user}/recommendations", params={"k": 20})
                mine.append(time.perf_counter() - t0)
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise AssertionError(f"{len(failures)} well-behaved requests failed: {failures[0]}")
    return latencies


def _status(answer: bytes) -> str:
    parts = answer.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 and answer.startswith(b"HTTP/") else "closed"


def _trickle(port: int, stop: threading.Event, length: int, chunk: bytes,
            every: float) -> str:
    """A POST announcing ``length`` body bytes, then ``chunk`` every ``every`` seconds
    until the server answers (or closes) or ``stop``: the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(length).encode()
                     + b"\r\n\r\n")
        sock.settimeout(every)
        answer = b""
        try:
            while not stop.is_set():
                try:
                    answer += sock.recv(4096)
                    break  # the server answered (or closed)
                except TimeoutError:
                    sock.sendall(chunk)
        except OSError:
            pass  # reset by the server after its answer
        return _status(answer)


def _oversized(port: int, stop: threading.Event) -> str:
    return _trickle(port, stop, 50_000_000, b"1" * 65536, 0.01)


def _slow(port: int, stop: threading.Event) -> str:
    return _trickle(port, stop, 1000, b" ", 0.2)


def _near_limit_body() -> bytes:
    from searec.inference.serving.limits import DEFAULT_MAX_BODY

    # a list of nested lists where ids belong: valid JSON, badly typed, just under the limit
    return b'{"users": [' + b",".join([b"[1,2]"] * ((DEFAULT_MAX_BODY - 64) // 6)) + b"]}"


def _near_limit(port: int, stop: threading.Event, body: list[bytes] = []) -> str:  # noqa: B006
    if not body:  # built once (its making would load the clients' process each time)
        body.append(_near_limit_body())
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nConnection: close\r\nContent-Length: "
                     + str(len(body[0])).encode() + b"\r\n\r\n" + body[0])
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return _status(answer)


HOSTILE: dict[str, Callable[[int, threading.Event], str]] = {
    "oversized": _oversized, "slow": _slow, "near_limit": _near_limit}


@contextlib.contextmanager
def hostile(port: int, kinds: list[str]) -> Iterator[Counter]:
    """One thread per kind, each keeping one such request in flight until the block ends;
    yields the count of (kind, status) of the hostile requests completed."""
    stop = threading.Event()
    seen: Counter = Counter()

    def loop(kind: str) -> None:
        while not stop.is_set():
            try:
                seen[(kind, HOSTILE[kind](port, stop))] += 1
            except OSError:
                seen[(kind, "refused")] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in kinds]
    for t in threads:
        t.start()
    time.sleep(0.3)  # the hostile requests are in flight before the clients start
    try:
        yield seen
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)


def summary(latencies: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "p50_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


def measure(base: str, users: list[str], scenarios: dict[str, list[str]], rounds: int,
            clients: int = 32, per_client: int = 10) -> dict[str, dict]:
    """Per scenario (name -> hostile kinds; [] is the clients alone): the pooled
    latencies of ``rounds`` rounds, the scenarios interleaved round by round so that
    drifts of the machine fall on all of them alike."""
    port = int(base.rsplit(":", 1)[1])
    clients_round(base, users, clients, 2)  # warm-up: connections, first-call costs
    pooled: dict[str, list[float]] = {name: [] for name in scenarios}
    hostile_seen: dict[str, Counter] = {name: Counter() for name in scenarios}
    for _ in range(rounds):
        for name, kinds in scenarios.items():
            with hostile(port, kinds) as seen:
                pooled[name] += clients_round(base, users, clients, per_client)
            hostile_seen[name].update(seen)
    return {name: {**summary(pooled[name]), "hostile": {f"{k} {s}": n for (k, s), n in
                                                        sorted(hostile_seen[name].items())}}
            for name in scenarios}


SCENARIOS = {"alone": [], "oversized + slow": ["oversized", "slow"],
             "near-limit body": ["near_limit"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--url", help="measure a server already serving --run at this base URL "
                    "(default: start one); with --json, print the results instead of "
                    "writing benchmarks/results")
    ap.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-client", type=int, default=10)
    ap.add_argument("--name", default="serve_hostile")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = ap.parse_args()
    import torch

    from searec.data.load import load_dataset
    from searec.inference.serving.process import free_port, spawn_server, stop_server
    from searec.runs import run_config

    dataset = load_dataset(run_config(args.run).data)  # the ids only: no model here
    users = [str(u) for u in (dataset.user_map.originals if dataset.user_map is not None
                              else range(dataset.n_users))]
    gc.collect()
    gc.freeze()  # the clients' own garbage collections stay out of their latencies
    scenarios = {name: SCENARIOS[name] for name in args.scenarios}
    proc = None
    if args.url is None:
        port = free_port()
        proc = spawn_server(args.run, port, ["--log-level", "warning"], timeout=600)
    try:
        results = measure(args.url or f"http://127.0.0.1:{port}", users, scenarios,
                          args.rounds, per_client=args.per_client)
    finally:
        if proc is not None:
            stop_server(proc)
    alone = results[next(iter(results))]["p99_ms"]
    for row in results.values():
        row["p99_vs_first"] = row["p99_ms"] / alone
    if args.json:
        print(json.dumps(results))
        return
    meta = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "run": args.run.name, "users": dataset.n_users, "items": dataset.n_items,
            "clients": 32, "per_client": args.per_client, "rounds": args.rounds,
            "server": "one searec serve process, default limits (--max-body 1 MiB, "
            "--body-timeout 30 s, --header-timeout 10 s), torch's default threads; the "
            "clients and hostile requests in one other process", "note": args.note}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    lines = ["# `searec serve` under hostile clients", "",
             f"{meta['cpus']} CPUs ({meta['processor']}), torch {meta['torch']}, run "
             f"{meta['run']} ({meta['users']:,} users, {meta['items']:,} items); 32 clients x "
             f"{args.per_client} top-20 GETs per round, {args.rounds} rounds per scenario, "
             "interleaved. " + meta["server"] + "." + (f" {args.note}" if args.note else ""),
             "", f"Command: `python benchmarks/serve_hostile.py --run RUN --rounds "
             f"{args.rounds}`", "",
             "| scenario | requests | p50 ms | p99 ms | max ms | p99 / alone | hostile "
             "requests completed (status) |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        done = ", ".join(f"{k}: {n}" for k, n in r["hostile"].items()) or "-"
        lines.append(f"| {name} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['max_ms']:.1f} | {r['p99_vs_first']:.2f} | {done} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
