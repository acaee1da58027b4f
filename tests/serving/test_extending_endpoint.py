"""docs/extending.md's serving endpoint, run as written: loaded as a plug-in of a real
`searec serve`, it answers in the run's ids, takes the server's error shape and limits,
and appears in the OpenAPI schema."""

from __future__ import annotations

import numpy as np
import pytest

from searec.inference.serving.process import free_port, stop_server
from searec.runs import load_run
from tests.serving.conftest import start_server
from tests.test_extending import example

httpx = pytest.importorskip("httpx")


def test_the_endpoint_example(shop_run, tmp_path):
    plugin = tmp_path / "popular.py"
    plugin.write_text(example("popular.py"))
    port = free_port()
    proc = start_server(shop_run, port, plugins=[plugin])
    try:
        base = f"http://127.0.0.1:{port}"
        reply = httpx.get(f"{base}/popular", params={"k": 3})
        assert reply.status_code == 200, reply.text
        _, dataset, _ = load_run(shop_run)
        counts = np.asarray(dataset.train.sum(axis=0)).ravel()
        top = np.argsort(-counts, kind="stable")[:3]
        assert reply.json() == {"items": [str(i) for i in dataset.item_map.to_original(top)],
                                "interactions": [int(c) for c in counts[top]]}
        bad = httpx.get(f"{base}/popular", params={"k": 0})
        assert bad.status_code == 422 and list(bad.json()) == ["error"]
        assert "/popular" in httpx.get(f"{base}/openapi.json").json()["paths"]
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}  # searec's own still
    finally:
        stop_server(proc)
