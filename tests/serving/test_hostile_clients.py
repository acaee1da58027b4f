"""32 well-behaved clients of a real `searec serve` keep their latency while an oversized
and a slow request are in flight (benchmarks/serve_hostile.py, run here in a process of its
own with fewer requests; it records the full figures): p99 with them <= 2x p99 without,
rounds interleaved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx")

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_hostile.py"


def test_hostile_requests_do_not_slow_the_others_down(server, shop_run):
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--run", str(shop_run), "--url", server, "--json",
         "--scenarios", "alone", "oversized + slow", "--rounds", "2", "--per-client", "10"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    alone, hostile = results["alone"], results["oversized + slow"]
    assert alone["requests"] == hostile["requests"] == 640
    assert hostile["hostile"].get("oversized 413", 0) >= 1, hostile  # refused, not read
    assert hostile["p99_ms"] <= 2 * alone["p99_ms"], results
