"""API docs that work offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, every script, stylesheet and icon
served by this server from the files the pinned ``fastapi-offline`` package installs (``/docs/assets/<name>``).

FastAPI's own pages load them from a CDN, their favicon from fastapi.tiangolo.com and ReDoc's fonts from Google, so
on an offline server they stay blank. The pages and their assets need no API key, like ``/health``; the OpenAPI document
stays at ``/openapi.json`` and gains the bearer scheme the API keys use, which is what shows Swagger's "Authorize".

What the bundles would still fetch from elsewhere, and why they don't:
- Swagger UI's validator badge (validator.swagger.io): ``validatorUrl`` is null.
- ReDoc's sidebar "API docs by Redocly" logo (cdn.redoc.ly), drawn whatever the options: the pages' Content
  Security Policy lets the browser load nothing from another host, so the image is refused and hides itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from imagerec.errors import NotFound

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSET_NAMES = frozenset(path.name for path in ASSETS_DIR.iterdir() if path.is_file())
ASSETS_PATH = "/docs/assets"
# Same-origin only. Inline script: FastAPI's Swagger page starts the UI from one; inline styles and blob workers:
# both bundles render their styles at run time, ReDoc searches in a worker.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:")
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`."}

router = APIRouter(include_in_schema=False)


def _page(html: HTMLResponse) -> HTMLResponse:
    html.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return html


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root, app = request.scope.get("root_path", ""), request.app
    return _page(get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI", oauth2_redirect_url=None,
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    ))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root, app = request.scope.get("root_path", ""), request.app
    return _page(get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png", with_google_fonts=False,
    ))


@router.get(ASSETS_PATH + "/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSET_NAMES:  # only the package's own files, by name: nothing else on disk is reachable
        raise NotFound(f"no docs asset {name!r}")
    return FileResponse(ASSETS_DIR / name)


def add_bearer_scheme(app: FastAPI) -> None:
    """Declare the API keys in the OpenAPI document (``Authorization: Bearer <key>``), required by every operation
    unless the operation says otherwise."""
    generate = app.openapi

    def openapi_with_bearer() -> dict[str, Any]:
        schema = generate()  # FastAPI builds it once and keeps it; setting the keys again changes nothing
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER_SCHEME
        schema["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi_with_bearer


def install_api_docs(app: FastAPI) -> None:
    """The offline ``/docs`` and ``/redoc`` pages with their assets, and the bearer scheme in ``/openapi.json``.
    ``app`` is built with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there too."""
    app.include_router(router)
    add_bearer_scheme(app)
