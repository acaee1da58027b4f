"""`searec serve` over real HTTP: answers equal the Python API's, bad requests get a clear
4xx, concurrent clients get the same answers as one at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import searec
from searec.inference.serving import RequestError, RunService
from searec.runs import load_run

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def service(shop_run) -> RunService:
    return RunService(shop_run, max_batch=50)


def test_service_matches_batch_recommend_and_excludes(service, shop_run):
    """The same top-k as `searec recommend` (Python API), in original ids; training items
    and the exclusion list never come back."""
    frame = searec.recommend(shop_run, users=["A0003Z", "A0010Z"], k=5)
    rows = service.recommend(["A0003Z", "A0010Z"], k=5)
    for row in rows:
        expected = frame[frame["user_id"] == row["user"]]
        assert row["items"] == expected["item_id"].tolist()
        np.testing.assert_allclose(row["scores"], expected["score"], rtol=1e-5)
    _, dataset, _ = load_run(shop_run)
    user = int(dataset.user_map.to_index(["A0003Z"])[0])
    seen = set(dataset.item_map.to_original(dataset.train[user].indices))
    everything = service.recommend(["A0003Z"], k=dataset.n_items)[0]["items"]
    assert not seen & set(everything) and len(everything) == dataset.n_items - len(seen)
    first_two = rows[0]["items"][:2]
    again = service.recommend(["A0003Z"], k=5, exclude=first_two)[0]["items"]
    assert not set(first_two) & set(again) and again[:3] == rows[0]["items"][2:5]
    with_seen = service.recommend(["A0003Z"], k=dataset.n_items, include_seen=True)[0]
    assert len(with_seen["items"]) == dataset.n_items
    sims = service.similar(["B000000005"], k=3)[0]
    assert sims["item"] == "B000000005" and "B000000005" not in sims["items"]
    assert sims["scores"] == sorted(sims["scores"], reverse=True)


@pytest.mark.parametrize(("call", "status", "message"), [
    (lambda s: s.recommend(["nobody"]), 404, "unknown user 'nobody'"),
    (lambda s: s.recommend(["A0003Z"], exclude=["B999"]), 404, "unknown excluded item 'B999'"),
    (lambda s: s.recommend(["A0003Z"], k=0), 422, "k must be an integer in 1..40"),
    (lambda s: s.recommend(["A0003Z"], k=41), 422, "k must be an integer in 1..40"),
    (lambda s: s.recommend([]), 422, "'users' is empty"),
    (lambda s: s.recommend(["A0003Z"] * 51), 413, "51 users in one request; at most 50"),
    (lambda s: s.similar(["B000000001"], k=40), 422, "k must be an integer in 1..39"),
    (lambda s: s.similar(["x"]), 404, "unknown item 'x'"),
])
def test_service_refuses_bad_queries(service, call, status, message):
    with pytest.raises(RequestError, match=message) as err:
        call(service)
    assert err.value.status == status


def test_http_answers_equal_the_service(server, service):
    info = httpx.get(f"{server}/info").json()
    assert info["model"] == "sea" and info["items"] == 40 and info["ids"] == "original"
    assert info["modalities"] == {"image": 16}
    body = {"users": ["A0003Z", "A0010Z"], "k": 4, "exclude": ["B000000003"]}
    got = httpx.post(f"{server}/recommend", json=body).json()["results"]
    expected = service.recommend(body["users"], 4, body["exclude"])
    assert [r["items"] for r in got] == [r["items"] for r in expected]
    np.testing.assert_allclose([r["scores"] for r in got], [r["scores"] for r in expected],
                               rtol=1e-5)
    one = httpx.get(f"{server}/users/A0003Z/recommendations", params={"k": 4}).json()
    assert one["items"] == service.recommend(["A0003Z"], 4)[0]["items"]
    sim = httpx.post(f"{server}/similar", json={"items": ["B000000002"], "k": 3}).json()
    assert sim["results"][0]["items"] == service.similar(["B000000002"], 3)[0]["items"]
    assert httpx.get(f"{server}/items/B000000002/similar?k=3").json()["items"] == \
        sim["results"][0]["items"]
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {"/recommend", "/similar", "/info", "/health"} <= set(schema["paths"])
    assert httpx.get(f"{server}/docs").status_code == 200


@pytest.mark.parametrize(("method", "path", "payload", "status", "message"), [
    ("post", "/recommend", {"users": ["nobody"]}, 404, "unknown user 'nobody'"),
    ("get", "/users/nobody/recommendations", None, 404, "unknown user 'nobody'"),
    ("post", "/recommend", {"users": ["A0003Z"], "k": 0}, 422,
     "k: Input should be greater than or equal to 1"),
    ("post", "/recommend", {"users": ["A0003Z"], "k": 1000}, 422,
     "k: Input should be less than or equal to 40"),
    ("get", "/users/A0003Z/recommendations?k=-1", None, 422,
     "k: Input should be greater than or equal to 1"),
    ("get", "/users/A0003Z/recommendations?k=ten", None, 422, "k: Input should be a valid"),
    ("post", "/recommend", {"users": ["A0003Z"] * 51}, 413, "at most 50"),
    ("post", "/recommend", {"users": "A0003Z"}, 422, "users: Input should be a valid list"),
    ("post", "/recommend", {"user": ["A0003Z"]}, 422, "users: Field required"),
    ("post", "/recommend", b'{"users": ["A0003Z"', 400, "not valid JSON"),
    ("post", "/similar", {"items": ["nope"]}, 404, "unknown item 'nope'"),
    ("get", "/items/nope/similar", None, 404, "unknown item 'nope'"),
])
def test_bad_http_requests_get_a_clear_4xx(server, method, path, payload, status, message):
    if isinstance(payload, bytes):
        response = httpx.post(f"{server}{path}", content=payload,
                              headers={"content-type": "application/json"})
    elif method == "post":
        response = httpx.post(f"{server}{path}", json=payload)
    else:
        response = httpx.get(f"{server}{path}")
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert "Traceback" not in response.text


def test_concurrent_clients_get_the_answers_of_one_at_a_time(server, service):
    users = [f"A{u:04d}Z" for u in range(40)]
    expected = {u: service.recommend([u], k=5)[0]["items"] for u in users}

    def ask(user: str) -> tuple[str, list[str]]:
        reply = httpx.get(f"{server}/users/{user}/recommendations", params={"k": 5},
                          timeout=30)
        reply.raise_for_status()
        return user, reply.json()["items"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, users * 3))
    assert len(answers) == 120
    assert all(items == expected[user] for user, items in answers)


def test_new_items_scored_from_features_match_an_addition(service, server, shop_run):
    """/items/score gives exactly the representations `searec items add` computes (its
    quality is tested in tests/test_items.py), over HTTP as in Python; bad rows get 4xx."""
    import pandas as pd

    from searec.inference.items import score_new_items

    _, dataset, _ = load_run(shop_run)
    raw = pd.read_parquet(shop_run.parent / "raw" / "image_vectors.parquet")
    rows = raw.set_index("item").loc[["B000000010", "B000000011"]].to_numpy().tolist()
    got = service.score_items({"image": rows}, ["A0003Z", "A0010Z"])
    assert [len(r["scores"]) for r in got] == [2, 2]
    direct = score_new_items(service.config, dataset, service.trained_reps,
                             service.trained_state, service.table,
                             {"image": np.asarray(rows, dtype=np.float32)})
    users = dataset.user_map.to_index(["A0003Z", "A0010Z"])
    np.testing.assert_allclose([r["scores"] for r in got],
                               (service.trained_reps[0][users] @ direct.T).numpy(), rtol=1e-5)
    reply = httpx.post(f"{server}/items/score",
                       json={"features": {"image": rows}, "users": ["A0003Z", "A0010Z"]})
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose([r["scores"] for r in reply.json()["results"]],
                               [r["scores"] for r in got], rtol=1e-4)
    for payload, status, message in [
        ({"features": {"image": [[1.0] * 5]}, "users": ["A0003Z"]}, 422,
         "5 columns, but the run's 'image' features have 16"),
        ({"features": {"audio": rows}, "users": ["A0003Z"]}, 422, "modality 'audio'"),
        ({"features": {"image": [[1.0] * 16, [2.0] * 15]}, "users": ["A0003Z"]}, 422,
         "row 1: 15 columns, but the run's 'image' features have 16"),
        ({"features": {"image": rows}, "users": ["nobody"]}, 404, "unknown user"),
        ({"features": {"image": [[1.0] * 16] * 51}, "users": ["A0003Z"]}, 413, "at most 50"),
    ]:
        bad = httpx.post(f"{server}/items/score", json=payload)
        assert bad.status_code == status, bad.text
        assert message in bad.json()["error"]


def test_approximate_top_k_agrees_with_exact_on_a_small_catalogue(shop_run, service):
    """faiss HNSW over 40 items finds the exact top-k; training and excluded items are
    removed from its candidates as from the exact ranking."""
    pytest.importorskip("faiss")
    approx = RunService(shop_run, approximate=True)
    users = [f"A{u:04d}Z" for u in range(20)]
    exact_rows = service.recommend(users, k=10, exclude=["B000000004"])
    approx_rows = approx.recommend(users, k=10, exclude=["B000000004"])
    for a, e in zip(approx_rows, exact_rows, strict=True):
        assert a["user"] == e["user"] and a["items"] == e["items"]
        np.testing.assert_allclose(a["scores"], e["scores"], rtol=1e-4)
    assert approx.info()["top_k"].startswith("approximate")
