"""Serve the console and the API docs from the app, under a strict Content-Security-Policy.

Everything a screen needs lies in ``static/`` (plain ES modules and CSS: no build step, no
CDN, no web font). Swagger UI and ReDoc come from the ``fastapi-offline`` package's bundles,
served here so that the same policy covers them; their start-up code is a file of ours, since
the policy admits no inline script.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"

# No inline script or style, nothing from another origin. 'self' for connect-src covers
# fetch, the long-polls and the event streams; img-src data: and blob: for the QR code and
# the charts fetched with the token.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "media-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Swagger UI and ReDoc (React, styled-components) write style elements and attributes at run
# time: their two pages, which show no one's data, admit inline *style*; script stays 'self'.
# ReDoc's search runs in a worker it makes from a blob.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "worker-src 'self'", "worker-src 'self' blob:"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # her page's link never leaves in a Referer
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecuredStaticFiles(StaticFiles):
    """Static files with the console's security headers; pages are revalidated every time
    (a fixed release reaches the desks at once), assets after an hour."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in SECURITY_HEADERS.items():
                    headers.append((name.lower().encode(), value.encode()))
                path = scope.get("path", "")
                cache = (
                    "no-cache"
                    if path.endswith((".html", "/", ".webmanifest", "sw.js"))
                    else ("max-age=3600")
                )
                headers.append((b"cache-control", cache.encode()))
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


def _docs_page(title: str, body: str) -> HTMLResponse:
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/docs-assets/favicon.png">
{body}</html>"""
    headers = SECURITY_HEADERS | {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
    return HTMLResponse(page, headers=headers)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _docs_page(
        "Pregnancy Butler — API (Swagger UI)",
        '<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>'
        '<body><div id="swagger-ui"></div>'
        '<script src="/docs-assets/swagger-ui-bundle.js"></script>'
        '<script src="/console/js/docs-swagger.js"></script></body>',
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _docs_page(
        "Pregnancy Butler — API (ReDoc)",
        '</head><body><div id="redoc"></div>'
        '<script src="/docs-assets/redoc.standalone.js"></script>'
        '<script src="/console/js/docs-redoc.js"></script></body>',
    )


@functools.cache
def _redoc_bundle() -> bytes:
    """ReDoc's bundle with its one fetch from the internet (the Redocly logo in the sidebar,
    from cdn.redoc.ly) pointed at the console's own icon."""
    bundle = (DOCS_ASSETS / "redoc.standalone.js").read_bytes()
    return bundle.replace(
        b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/console/icons/icon-192.png"
    )


@router.get("/docs-assets/redoc.standalone.js")
async def redoc_bundle() -> Response:
    headers = SECURITY_HEADERS | {"Cache-Control": "max-age=3600"}
    return Response(_redoc_bundle(), media_type="text/javascript", headers=headers)


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "icons" / "icon-192.png", media_type="image/png")


def mount(app: FastAPI) -> None:
    """Mount the console's files and the docs' bundles on the app."""
    app.mount("/console", SecuredStaticFiles(directory=STATIC, html=True), name="console")
    app.mount("/docs-assets", SecuredStaticFiles(directory=DOCS_ASSETS), name="docs-assets")
