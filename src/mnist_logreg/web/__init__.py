"""The demo server: a drawing page and a JSON API over one trained run (``mnist-logreg serve``)."""

from .app import create_app

__all__ = ["create_app"]
