"""The FastAPI app: the routes (``routes.py``) wired to one run's ``ModelService``, with the API's
error answers and its offline /docs.

What a client sends ends in a 4xx JSON error at worst; an error of our own is logged and
answered 500, never hidden behind a 4xx.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from ..config import Limits
from ..data.catalog import DEFAULT_DATA_DIR
from ..model.run_folder import package_version
from .bodies import ClientError
from .routes import router
from .service import ModelService

SERVE_VARIABLE = "MNIST_LOGREG_SERVE"  # how `serve --workers N` tells each worker process its run and limits
DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon, served from the installed package

log = logging.getLogger("mnist_logreg.web")
# The multipart parser logs a warning for each malformed body it meets; the client gets a 400
# saying so, and the server's console stays quiet.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


def create_app(
    run_dir: Path | str,
    limits: Limits = Limits(),
    corrections: Path | str | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
) -> FastAPI:
    """An app serving the model of ``run_dir`` (raises RunError if it holds no usable model); with
    ``corrections``, a folder, learning from corrections kept there (the run's data in ``data_dir``)."""
    service = ModelService(run_dir, limits, corrections, data_dir)
    app = FastAPI(
        title="mnist-logreg demo",
        version=package_version(),
        description=f"Logistic regression on {service.served.info.dataset}: draw or upload an image, get the class.",
        docs_url=None,  # served below from the package's own copy of Swagger UI, not from a CDN
        redoc_url=None,
    )
    app.state.service = service
    app.include_router(router)
    answer_errors_as_json(app)
    serve_docs_offline(app)
    if limits.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(limits.cors), allow_methods=["GET", "POST"])
    return app


def answer_errors_as_json(app: FastAPI) -> None:
    """Every error in the API's one shape, ``{"error": ...}``: the client's as 4xx, ours as a logged 500."""

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {validation_message(error)}"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        """Starlette's own answers (404 no such route, 405 wrong method)."""
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("error answering %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal server error (logged)"}, status_code=500)


def serve_docs_offline(app: FastAPI) -> None:
    """/docs from the Swagger UI files that swagger-ui-bundle installs: the page renders with no network."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def validation_message(error: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one sentence: ``query parameter 'explain': Input should be ...``."""
    parts = []
    for problem in error.errors():
        where, *path = problem.get("loc", ())
        name = ".".join(map(str, path))
        parts.append(f"{where} parameter {name!r}: {problem.get('msg', 'invalid')}" if name else problem.get("msg", ""))
    return "; ".join(parts) or "invalid request"


def serve_settings(
    run_dir: Path, limits: Limits, corrections: Path | None = None, data_dir: Path | str = DEFAULT_DATA_DIR
) -> str:
    """What `serve` hands each worker process through ``SERVE_VARIABLE``: the run, the whole of its
    limits, and the corrections folder and data folder (``--corrections``)."""
    return json.dumps(
        {
            "run_dir": str(Path(run_dir).resolve()),
            "limits": limits.to_json(),
            "corrections": None if corrections is None else str(Path(corrections).resolve()),
            "data_dir": str(Path(data_dir).resolve()),
        }
    )


def app_from_environment() -> FastAPI:
    """The app factory each ``serve --workers N`` process calls: the run named in the environment.

    A worker predicts one image at a time, and the model is 7,850 numbers: one OpenCV thread
    each keeps N workers from fighting over the cores.
    """
    import cv2

    cv2.setNumThreads(1)
    settings = json.loads(os.environ[SERVE_VARIABLE])
    return create_app(
        settings["run_dir"], Limits.from_json(settings["limits"]), settings["corrections"], settings["data_dir"]
    )
