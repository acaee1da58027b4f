"""`searec serve`: a trained run over HTTP (FastAPI), JSON in and out.

Endpoints (the OpenAPI page is at /docs, the schema at /openapi.json):

- ``GET /health``: liveness.
- ``GET /info``: model, dataset, sizes, id kind, the run's test metrics.
- ``POST /recommend`` ``{"users": [...], "k": 20, "exclude": [...], "include_seen": false}``
  and ``GET /users/{user}/recommendations?k=20``: top-k per user.
- ``POST /similar`` ``{"items": [...], "k": 10}`` and ``GET /items/{item}/similar?k=10``.
- ``POST /items/score`` ``{"features": {"image": [[...], ...]}, "users": [...]}``: scores
  of items known only by their features, as ``searec items add`` would represent them,
  without adding them.

A request that cannot be answered gets a 4xx with ``{"error": "<what is wrong>"}``: 400
malformed JSON, 404 unknown user or item, 413 too many ids in one request, 422 a field of
the wrong type or out of range. Never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from searec.errors import SearecError
from searec.serving.service import Id, RequestError, RunService

try:
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
except ImportError:  # pragma: no cover - the error names the extra to install
    FastAPI = None  # type: ignore[assignment,misc]

log = logging.getLogger("searec.serve")


# ---------------------------------------------------------------- the JSON schema
class Strict(BaseModel):
    """A request body: unknown fields are errors (a misspelt "exlude" is not ignored)."""

    model_config = ConfigDict(extra="forbid")


class RecommendRequest(Strict):
    users: list[Id] = Field(description="User ids (original ids where the data maps "
                            "them, else indices).")
    k: int = Field(20, description="Items per user (1..catalogue size).")
    exclude: list[Id] = Field(default_factory=list,
                              description="Item ids never to return, for every user.")
    include_seen: bool = Field(False, description="Also return the users' training "
                               "items.")


class UserItems(BaseModel):
    user: Id
    items: list[Id]
    scores: list[float]


class RecommendResponse(BaseModel):
    results: list[UserItems]


class SimilarRequest(Strict):
    items: list[Id] = Field(description="Item ids.")
    k: int = Field(10, description="Similar items per item (1..catalogue size - 1).")


class ItemItems(BaseModel):
    item: Id
    items: list[Id]
    scores: list[float] = Field(description="Cosine similarity of the representations.")


class SimilarResponse(BaseModel):
    results: list[ItemItems]


class ScoreItemsRequest(Strict):
    features: dict[str, list[list[float]]] = Field(
        description="Modality -> one feature row per new item (every modality the model "
        "reads, the trained widths).")
    users: list[Id] = Field(description="Users to score the new items for.")


class UserScores(BaseModel):
    user: Id
    scores: list[float] = Field(description="One score per new item, in the rows' order.")


class ScoreItemsResponse(BaseModel):
    results: list[UserScores]


class Error(BaseModel):
    error: str


def _require_fastapi() -> None:
    if FastAPI is None:
        raise SearecError("searec serve needs FastAPI and uvicorn: "
                          "pip install 'searec[serve]'")


def create_app(service: RunService) -> FastAPI:
    """The HTTP application over one loaded run."""
    _require_fastapi()

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Error} for code in (400, 404, 413, 422)}
    info = service.info()
    app = FastAPI(title="searec", summary=f"{info['model']} on {info['dataset']}: "
                  f"{info['users']} users, {info['items']} items ({info['ids']} ids)",
                  responses=errors)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"error": "the request body is not valid JSON"},
                                status_code=400)
        text = "; ".join(_describe(p) for p in problems[:5])
        return JSONResponse({"error": text}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")  # the trace stays in the server's log
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"},
                            status_code=500)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def model_info() -> dict[str, Any]:
        return service.info()

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(body: RecommendRequest) -> dict[str, Any]:
        return {"results": service.recommend(body.users, body.k, body.exclude,
                                             body.include_seen)}

    @app.get("/users/{user}/recommendations", response_model=UserItems)
    def recommend_one(user: str, k: int = Query(20), include_seen: bool = False
                      ) -> dict[str, Any]:
        return service.recommend([user], k, (), include_seen)[0]

    @app.post("/similar", response_model=SimilarResponse)
    def similar(body: SimilarRequest) -> dict[str, Any]:
        return {"results": service.similar(body.items, body.k)}

    @app.post("/items/score", response_model=ScoreItemsResponse)
    def score_items(body: ScoreItemsRequest) -> dict[str, Any]:
        return {"results": service.score_items(body.features, body.users)}

    @app.get("/items/{item}/similar", response_model=ItemItems)
    def similar_one(item: str, k: int = Query(10)) -> dict[str, Any]:
        return service.similar([item], k)[0]

    return app


def _describe(problem: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {problem.get('msg', 'invalid')}"


def serve(run: str, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 1000,
          device: str = "cpu", log_level: str = "info", approximate: bool = False) -> None:
    """Load ``run`` once and serve it until interrupted."""
    _require_fastapi()
    import uvicorn

    service = RunService(run, max_batch=max_batch, device=device, approximate=approximate)
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level)
