"""The README's "Serve a trained run" block, run as written: its `searec serve` line starts
the server (on a free port instead of 8000, with the run of tests/serving/conftest.py in
place of runs/shop), then each curl line runs (with curl when the machine has it, else
the same request through httpx) and must answer 200 with JSON."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serving.conftest import free_port, start_server, stop_server

httpx = pytest.importorskip("httpx")
README = Path(__file__).resolve().parents[2] / "README.md"


def serve_block() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- serve:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lacks the serve block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def as_httpx(argv: list[str]) -> httpx.Response:
    """The request a `curl -s [-X M] [-H h] [-d body] URL` line makes, through httpx."""
    method, headers, body, url = "GET", {}, None, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            body, method = next(args), "POST" if method == "GET" else method
        elif arg.startswith("http"):
            url = arg
        else:
            raise AssertionError(f"README curl line uses {arg!r}; teach as_httpx it")
    assert url, argv
    return httpx.request(method, url, headers=headers, content=body, timeout=30)


@pytest.mark.parametrize("via", ["curl", "httpx"])
def test_readme_serve_block_runs(shop_run, via):
    if via == "curl" and not shutil.which("curl"):
        pytest.skip("no curl on this machine (the httpx case runs the same requests)")
    lines = serve_block()
    serve, curls = shlex.split(lines[0]), [shlex.split(line) for line in lines[1:]]
    assert serve[:2] == ["searec", "serve"] and serve[-1] == "&", serve
    assert curls and all(c[0] == "curl" for c in curls), curls
    options = dict(zip(serve[2:-1:2], serve[3:-1:2], strict=True))  # --flag value pairs
    assert options["--run"] == "runs/shop" and options["--port"] == "8000", options
    extra = [x for flag, value in options.items() if flag not in ("--run", "--port")
             for x in (flag, value)]
    port = free_port()
    proc = start_server(shop_run, port, *extra)
    try:
        for argv in curls:
            argv = [a.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for a in argv]
            if via == "curl":
                done = subprocess.run([*argv, "-w", "\n%{http_code}"], capture_output=True,
                                      text=True, timeout=60)
                body, status = done.stdout.rsplit("\n", 1)
                status = int(status)
            else:
                reply = as_httpx(argv)
                body, status = reply.text, reply.status_code
            assert status == 200, (argv, body)
            answer = json.loads(body)
            assert "error" not in answer
            if "/recommend" in " ".join(argv) and "results" in answer:
                assert all(len(r["items"]) == 5 and "B000000007" not in r["items"]
                           for r in answer["results"])
    finally:
        stop_server(proc)
