"""How soon the command line answers: ``searec --help``, ``--version`` and every
subcommand's ``--help``; ``searec recommend`` on a trained run (a few users, to the
written file: its first output); ``searec serve`` on the same run, to its first line on
stdout and to its first answered ``GET /health``. Each in a fresh process, as a user runs
it, min / median of the repeats.

    python benchmarks/cli_startup.py [--run RUN] [--repeats 5] [--threads 1]
        [--name cli_startup] [--note "..."]

Without --run only the --help/--version rows are measured. Writes
benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEAREC = [sys.executable, "-m", "searec"]


def _commands() -> list[list[str]]:
    """--help / --version and every (sub)command's --help."""
    from searec.cli import command_paths

    return [["--help"], ["--version"], *([*path, "--help"] for path in command_paths())]


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _time_process(argv: list[str], repeats: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time_serve(run: Path, repeats: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """(to the first stdout line, to the first answered GET /health) per start."""
    first_line, ready = [], []
    for _ in range(repeats):
        port = _free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([*SEAREC, "serve", "--run", str(run), "--port", str(port),
                                 "--log-level", "warning"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()
            first_line.append(time.perf_counter() - t0)
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"searec serve exited with {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                                timeout=1) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    time.sleep(0.02)
            ready.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return first_line, ready


def _stats(samples: list[float]) -> dict[str, float | list[float]]:
    return {"min_s": round(min(samples), 4), "median_s": round(statistics.median(samples), 4),
            "samples_s": [round(s, 4) for s in samples]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run for recommend and serve")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="cli_startup")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    env = _env(args.threads)

    rows: dict[str, dict] = {}
    for argv in _commands():
        label = "searec " + " ".join(argv)
        rows[label] = _stats(_time_process([*SEAREC, *argv], args.repeats, env))
        print(f"{label}: {rows[label]['median_s']} s", file=sys.stderr)
    if args.run is not None:
        with tempfile.TemporaryDirectory() as tmp:
            users = Path(tmp) / "users.txt"
            users.write_text("0\n1\n2\n")
            label = "searec recommend --run RUN --users (3 users) --index-ids"
            rows[label] = _stats(_time_process(
                [*SEAREC, "recommend", "--run", str(args.run), "--users", str(users),
                 "--index-ids", "--out", str(Path(tmp) / "out.csv")], args.repeats, env))
            print(f"{label}: {rows[label]['median_s']} s", file=sys.stderr)
        first_line, ready = _time_serve(args.run, args.repeats, env)
        rows["searec serve --run RUN: first line on stdout"] = _stats(first_line)
        rows["searec serve --run RUN: first answered GET /health"] = _stats(ready)

    import torch

    report = {
        "command": " ".join(["python", "benchmarks/cli_startup.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(), "torch": torch.__version__,
        "threads": args.threads, "repeats": args.repeats, "run": str(args.run or ""),
        "note": args.note, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = [f"# Command-line start-up ({report['command']})", "",
             f"{report['machine']}; Python {report['python']}, torch {report['torch']}; "
             f"{report['threads']} thread(s); fresh process per sample, "
             f"{report['repeats']} repeats." + (f" Run: {report['run']}." if report['run']
                                                else "")
             + (f" {report['note']}" if report["note"] else ""), "",
             "| command | min s | median s |", "|---|---|---|"]
    for label, row in report["rows"].items():
        lines.append(f"| `{label}` | {row['min_s']:.3f} | {row['median_s']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
