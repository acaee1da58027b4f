"""Serving a trained run: :class:`RunService` (Python) and ``searec serve`` (HTTP), with
endpoints plug-ins add (:func:`register_endpoints`)."""

from searec.inference.serving.app import ENDPOINTS, create_app, register_endpoints
from searec.inference.serving.server import serve
from searec.inference.serving.service import RequestError, RunService

__all__ = ["ENDPOINTS", "RequestError", "RunService", "create_app", "register_endpoints",
           "serve"]
