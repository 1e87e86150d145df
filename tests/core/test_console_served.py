"""The console and the API docs are served by the app itself, under a strict CSP, with nothing
fetched from another origin (a hospital intranet has no internet). The browser tests
(tests/console) see the pages run; these read what is served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.console.router import CSP, STATIC
from tests.helpers.api import Api

FILES = sorted(p for p in STATIC.rglob("*") if p.is_file())
PAGES = [p for p in FILES if p.suffix == ".html"]
TEXT = [p for p in FILES if p.suffix in {".html", ".js", ".css", ".webmanifest"}]
URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


def test_the_policy_admits_no_inline_script_or_style_and_nothing_off_origin() -> None:
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_holds_inline_script_or_style(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
        assert "src=" in tag, f"{page.name}: inline script {tag}"
    assert not re.search(r"<style\b", html, re.IGNORECASE), f"{page.name}: a <style> block"
    assert not re.search(r"\sstyle=", html, re.IGNORECASE), f"{page.name}: a style attribute"
    assert not re.search(r"\son[a-z]+=", html, re.IGNORECASE), f"{page.name}: an inline handler"


@pytest.mark.parametrize("path", TEXT, ids=lambda p: str(p.relative_to(STATIC)))
def test_no_file_names_another_origin(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)  # comments may cite a source
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    assert not URL.findall(text), f"{path.name} names another origin"


async def test_every_console_file_is_served_with_the_policy(api: Api) -> None:
    for path in FILES:
        response = await api.client.get(f"/console/{path.relative_to(STATIC).as_posix()}")
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    root = await api.client.get("/console/")
    assert root.status_code == 200
    assert '<form id="login"' in root.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_their_assets_from_the_app(api: Api, page: str) -> None:
    response = await api.client.get(page)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy  # inline style only, for Swagger UI and ReDoc
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", response.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        assert not asset.startswith("//")
        loaded = await api.client.get(asset)
        assert loaded.status_code == 200, asset
        if asset.endswith(".js"):
            assert "cdn.redoc.ly" not in loaded.text
            assert "cdn.jsdelivr.net" not in loaded.text


async def test_swagger_ui_does_not_send_the_document_to_the_public_validator(api: Api) -> None:
    script = await api.client.get("/console/js/docs-swagger.js")
    assert "validatorUrl: null" in script.text
