"""`searec serve` in a child process, returned once it answers /health (for tests,
benchmarks and scripts that need a real server on a loopback port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from searec.errors import SearecError


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn_server(run: str | Path, port: int, options: Sequence[str] = (),
                 timeout: float = 300.0, plugins: Sequence[str | Path] = ()
                 ) -> subprocess.Popen:
    """Start ``searec [--plugin P ...] serve --run RUN --port PORT *options`` and wait for
    /health; the caller stops it with :func:`stop_server`. Its output is kept for the error
    message if it exits before answering."""
    loaded = [arg for p in plugins for arg in ("--plugin", str(p))]
    proc = subprocess.Popen(
        [sys.executable, "-m", "searec", *loaded, "serve", "--run", str(run), "--port",
         str(port), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ})
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise SearecError(f"searec serve exited {proc.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop_server(proc)
    raise SearecError(f"searec serve did not answer {url} within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate a server from :func:`spawn_server` (kill it if it does not stop)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
