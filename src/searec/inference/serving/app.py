"""`searec serve`: a trained run over HTTP (FastAPI), JSON in and out.

Endpoints (the OpenAPI page is at /docs, served without any network access; the schema
at /openapi.json):

- ``GET /health``: liveness.
- ``GET /info``: model, dataset, sizes, id kind, limits, the run's test metrics.
- ``POST /recommend`` ``{"users": [...], "k": 20, "exclude": [...], "include_seen": false}``
  and ``GET /users/{user}/recommendations?k=20``: top-k per user.
- ``POST /similar`` ``{"items": [...], "k": 10}`` and ``GET /items/{item}/similar?k=10``.
- ``POST /items/score`` ``{"features": {"image": [[...], ...]}, "users": [...]}``: scores
  of items known only by their features, as ``searec items add`` would represent them,
  without adding them.
- ``GET /metrics``: Prometheus metrics (requests and latency per route and status).

Every answer other than 2xx is ``{"error": "<what is wrong>"}``: 400 malformed JSON or
body, 404 unknown user, item or route, 405 wrong method, 408 a body too slow to arrive,
413 too many ids, too large an answer or too large a body, 422 a field of the wrong type
or out of range, 409 /items/score on a run without a cold-item path, 503 busy (retry),
500 a fault of searec's (its trace stays in the log).
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations, and
# the request bodies are classes local to create_app
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from searec.errors import SearecError
from searec.inference.serving.limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY,
    BodyRejected,
    BoundedBody,
)
from searec.inference.serving.service import RequestError, RunService
from searec.schema import Registry, short_repr
from searec.version import __version__

try:
    from fastapi import FastAPI, Path, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException
except ImportError:  # pragma: no cover - the error names the extra to install
    FastAPI = None  # type: ignore[assignment,misc]

log = logging.getLogger("searec.serve")

# An id in a request: an original id (a string), or an index (a number) where the data
# has no id map; bounded, so that no id costs more than a lookup.
MAX_ID_CHARS = 256
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)] | Annotated[
    int, Field(ge=0, le=2**53)]


# ---------------------------------------------------------------- the JSON schema
class Strict(BaseModel):
    """A request body: unknown fields are errors (a misspelt "exlude" is not ignored)."""

    model_config = ConfigDict(extra="forbid")


class UserItems(BaseModel):
    user: Id
    items: list[Id]
    scores: list[float]


class RecommendResponse(BaseModel):
    results: list[UserItems]


class ItemItems(BaseModel):
    item: Id
    items: list[Id]
    scores: list[float] = Field(description="Cosine similarity of the representations.")


class SimilarResponse(BaseModel):
    results: list[ItemItems]


class UserScores(BaseModel):
    user: Id
    scores: list[float] = Field(description="One score per new item, in the rows' order.")


class ScoreItemsResponse(BaseModel):
    results: list[UserScores]


class Health(BaseModel):
    status: str


class Error(BaseModel):
    error: str


def _require_fastapi() -> None:
    if FastAPI is None:
        raise SearecError("searec serve needs FastAPI and uvicorn: "
                          "pip install 'searec[serve]'")


def _request_models(service: RunService) -> tuple[type[Strict], type[Strict], type[Strict]]:
    """The request bodies of this run: k bounded by its catalogue's size, examples from
    its own ids and modalities (for /docs, and for a fuzzer to reach past the 404s)."""
    n_items = service.dataset.n_items
    most_k, most_similar = n_items, max(1, n_items - 1)
    user, item = service.example_ids()
    widths = {m: int(f.shape[1]) for m, f in service.dataset.modalities.items()}

    class RecommendRequest(Strict):
        users: list[Id] = Field(description="User ids (original ids where the data maps "
                                "them, else indices).", examples=[[user]])
        k: int = Field(min(20, most_k), ge=1, le=most_k,
                       description="Items per user (1..catalogue size).")
        exclude: list[Id] = Field(default_factory=list, description="Item ids never to "
                                  "return, for every user.", examples=[[item]])
        include_seen: bool = Field(False, description="Also return the users' training "
                                   "items.")

    class SimilarRequest(Strict):
        items: list[Id] = Field(description="Item ids.", examples=[[item]])
        k: int = Field(min(10, most_similar), ge=1, le=most_similar,
                       description="Similar items per item (1..catalogue size - 1).")

    class ScoreItemsRequest(Strict):
        features: dict[Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)],
                       list[list[float]]] = Field(
            description="Modality -> one feature row per new item (every modality the "
            "model reads, the trained widths: " + ", ".join(
                f"{m} {w}" for m, w in widths.items()) + ").",
            examples=[{m: [[0.0] * w] for m, w in widths.items()}])
        users: list[Id] = Field(description="Users to score the new items for.",
                                examples=[[user]])

    return RecommendRequest, SimilarRequest, ScoreItemsRequest


# Endpoints plug-ins add (``searec --plugin FILE serve``): each function is handed the app
# and the loaded service once, and adds its routes; their errors take the one error shape
EndpointAdder = Callable[["FastAPI", RunService], None]
ENDPOINTS: Registry[EndpointAdder] = Registry("serving endpoint")


def register_endpoints(name: str) -> Callable[[EndpointAdder], EndpointAdder]:
    """Decorator: ``add(app, service)`` adds routes to every app :func:`create_app`
    builds, after searec's own (a path of those keeps its searec meaning)."""

    def register(add: EndpointAdder) -> EndpointAdder:
        return ENDPOINTS.add(name, add)

    return register


def create_app(service: RunService, max_body: int = DEFAULT_MAX_BODY,
               body_timeout: float = DEFAULT_BODY_TIMEOUT, metrics: bool = True) -> FastAPI:
    """The HTTP application over one loaded run: bodies over ``max_body`` bytes or slower
    than ``body_timeout`` seconds are refused; ``metrics``: expose ``/metrics``."""
    _require_fastapi()
    from fastapi_offline import FastAPIOffline

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Error} for code in (400, 404, 405, 408, 409, 413, 422, 500, 503)}
    info = service.info()
    app = FastAPIOffline(
        title="searec", version=__version__, responses=errors, redoc_url=None,
        summary=f"{info['model']} on {info['dataset']}: {info['users']} users, "
        f"{info['items']} items ({info['ids']} ids)")
    RecommendRequest, SimilarRequest, ScoreItemsRequest = _request_models(service)
    most_k, most_similar = service.dataset.n_items, max(1, service.dataset.n_items - 1)
    user, item = service.example_ids()

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BodyRejected)
    async def body_rejected(_: Request, exc: BodyRejected) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status,
                            headers={"Connection": "close"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyRejected):  # FastAPI wraps what reading raised
            return await body_rejected(request, exc.__cause__)
        message = {404: "no such route; see /docs for the endpoints",
                   405: "method not allowed on this route; see /docs"}.get(
            exc.status_code, str(exc.detail))
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            message = "the request body is not valid JSON (or not UTF-8)"
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=exc.headers)

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

    # async, so that they answer from the event loop even when every worker thread is busy
    @app.get("/health", response_model=Health)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def model_info() -> dict[str, Any]:
        return info

    # A JSON body is read here and parsed, counted and validated in a worker thread:
    # FastAPI would parse and validate it on the event loop, where every id of a large
    # badly typed body costs an error object while all other clients wait.
    def parse(raw: bytes, model: type[BaseModel], counts: list[tuple[str, str]]) -> Any:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise RequestError(400, "the request body is not valid JSON (or not UTF-8)"
                               ) from None
        if not isinstance(data, dict):
            raise RequestError(422, "body: expected a JSON object")
        found = [(len(v) if isinstance(v := data.get(key), list) else 0, what)
                 for key, what in counts]
        features = data.get("features") if model is ScoreItemsRequest else None
        if isinstance(features, dict):  # counted with the ids, then each row's width
            rows = [len(v) for v in features.values() if isinstance(v, list)]
            found.append((max(rows, default=0), "new items"))
        service.check_counts(found)
        if isinstance(features, dict):
            _check_feature_widths(features, service)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestError(422, "; ".join(_describe(p) for p in exc.errors()[:5])
                               ) from None

    def body_of(model: type[BaseModel]) -> dict[str, Any]:
        """The OpenAPI request body of an endpoint that parses its own."""
        return {"requestBody": {"required": True, "content": {
            "application/json": {"schema": model.model_json_schema()}}}}

    async def answered(request: Request, model: type[BaseModel], counts: list[tuple[str, str]],
                       answer: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """Read the body here; parse it and ``answer`` it in a worker thread."""
        raw = await request.body()
        return await run_in_threadpool(lambda: answer(parse(raw, model, counts)))

    @app.post("/recommend", response_model=RecommendResponse,
              openapi_extra=body_of(RecommendRequest))
    async def recommend(request: Request) -> dict[str, Any]:
        return await answered(
            request, RecommendRequest, [("users", "users"), ("exclude", "excluded items")],
            lambda body: {"results": service.recommend(body.users, body.k, body.exclude,
                                                       body.include_seen)})

    @app.post("/similar", response_model=SimilarResponse,
              openapi_extra=body_of(SimilarRequest))
    async def similar(request: Request) -> dict[str, Any]:
        return await answered(request, SimilarRequest, [("items", "items")], lambda body: {
            "results": service.similar(body.items, body.k)})

    @app.post("/items/score", response_model=ScoreItemsResponse,
              openapi_extra=body_of(ScoreItemsRequest))
    async def score_items(request: Request) -> dict[str, Any]:
        return await answered(request, ScoreItemsRequest, [("users", "users")], lambda body: {
            "results": service.score_items(body.features, body.users)})

    # GET endpoints: plain functions, which FastAPI runs in worker threads
    @app.get("/users/{user}/recommendations", response_model=UserItems)
    def recommend_one(
        user: Annotated[str, StringConstraints(max_length=MAX_ID_CHARS),
                        Path(examples=[str(user)])],
        k: int = Query(min(20, most_k), ge=1, le=most_k), include_seen: bool = False,
    ) -> dict[str, Any]:
        return service.recommend([user], k, (), include_seen)[0]

    @app.get("/items/{item}/similar", response_model=ItemItems)
    def similar_one(item: Annotated[str, StringConstraints(max_length=MAX_ID_CHARS),
                                    Path(examples=[str(item)])],
                    k: int = Query(min(10, most_similar), ge=1, le=most_similar)
                    ) -> dict[str, Any]:
        return service.similar([item], k)[0]

    for add_routes in ENDPOINTS.copy().values():
        add_routes(app, service)
    app.add_middleware(BoundedBody, max_bytes=max_body,  # type: ignore[arg-type]
                       timeout=body_timeout)
    if metrics:  # added last, so outermost: refused bodies are counted too
        from prometheus_client import CollectorRegistry
        from prometheus_fastapi_instrumentator import Instrumentator

        # a registry of its own: several apps in one process keep separate counts
        Instrumentator(registry=CollectorRegistry()).instrument(app).expose(
            app, endpoint="/metrics", include_in_schema=False)
    return app


def _check_feature_widths(features: dict[str, Any], service: RunService) -> None:
    """Before /items/score validates each number (its rows counted already): each row as
    wide as its modality, so that validation is bounded by what a good request holds."""
    widths = {m: int(f.shape[1]) for m, f in service.dataset.modalities.items()}
    for m, value in features.items():
        if m not in widths:
            raise RequestError(422, f"modality {short_repr(m)} is not one the model reads "
                               f"({', '.join(widths)})")
        if not isinstance(value, list):
            continue
        for n, row in enumerate(value):
            if isinstance(row, list) and len(row) != widths[m]:
                raise RequestError(422, f"features[{m!r}] row {n}: {len(row)} columns, but "
                                   f"the run's {m!r} features have {widths[m]}")


def _describe(problem: dict[str, Any]) -> str:
    where = ".".join(str(p)[:40] for p in problem.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {problem.get('msg', 'invalid')}"
