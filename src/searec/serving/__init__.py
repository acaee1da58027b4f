"""Serving a trained run: :class:`RunService` (Python) and ``searec serve`` (HTTP)."""

from searec.serving.app import create_app
from searec.serving.server import serve
from searec.serving.service import RequestError, RunService

__all__ = ["RequestError", "RunService", "create_app", "serve"]
