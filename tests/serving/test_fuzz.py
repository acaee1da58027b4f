"""Property-based fuzzing of the real `searec serve` over its own OpenAPI schema
(schemathesis, loopback only, a fixed seed and a bounded number of examples): for every
operation, generated requests, valid and invalid, never get a 5xx, and every answer
matches the schema: its status code, content type and body shape."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")


def test_no_request_gets_a_5xx_or_breaks_the_schema(server, tmp_path):
    assert server.startswith("http://127.0.0.1:")  # loopback only
    local = Path(sys.executable).parent / "schemathesis"
    command = str(local) if local.is_file() else shutil.which("schemathesis")
    assert command, "schemathesis is installed (searec[dev]) but its command is not found"
    done = subprocess.run(
        [command, "run", f"{server}/openapi.json", "--checks", ",".join(CHECKS),
         "--max-examples", "40", "--generation-deterministic", "--request-timeout", "30",
         "--no-color", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    tail = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1], tail
