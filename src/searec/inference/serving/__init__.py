"""Serving a trained run: :class:`RunService` (Python) and ``searec serve`` (HTTP)."""

from searec.inference.serving.app import create_app
from searec.inference.serving.server import serve
from searec.inference.serving.service import RequestError, RunService

__all__ = ["RequestError", "RunService", "create_app", "serve"]
