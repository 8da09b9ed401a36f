"""The API docs work offline: /docs and /redoc and every asset they name come from this server, no other host,
without an API key; the OpenAPI document declares the bearer keys; a real browser renders the operations list.

The browser tests need Debian's ``chromium`` (``scripts/setup-browser.sh`` installs it); without it they skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from imagerec.app import create_app
from imagerec.config import Settings
from tests.helpers import BASE_URL
from tests.server_process import ServerProcess

PAGES = ("/docs", "/redoc")
ABSOLUTE_URL = re.compile(r"""(?:[a-z][a-z0-9+.-]*:)?//[^\s'"<>)]+""", re.IGNORECASE)  # http://x, //x, ws://x
FONT_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,2000", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0")
CSP_REFUSAL = "violates the following Content Security Policy"


class _Links(HTMLParser):
    """Every ``src`` and ``href`` in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def linked_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """A client that sends no API key."""
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        yield client


@pytest.mark.parametrize("page", PAGES)
def test_pages_name_no_other_host(anonymous: TestClient, page: str) -> None:
    response = anonymous.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = linked_urls(html)
    assert any(url.endswith(".js") for url in urls), urls  # the page does load its bundle, from here
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} links {url}"
    assert ABSOLUTE_URL.findall(html) == [], f"{page} names another host"


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_a_page_names_is_served_without_a_key(anonymous: TestClient, page: str) -> None:
    for url in linked_urls(anonymous.get(page).text):
        response = anonymous.get(url)
        assert response.status_code == 200, url
        assert response.content, url
        assert not any(host.encode() in response.content for host in FONT_HOSTS), f"{url} loads web fonts"


def test_assets_are_only_the_packages_files(anonymous: TestClient) -> None:
    assert anonymous.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    for url in ("/docs/assets/__init__.py", "/docs/assets/core.py", "/docs/assets/..%2fcore.py",
                "/docs/assets/%2e%2e%2f%2e%2e%2fapi_docs.py", "/docs/assets/nothing.js"):
        assert anonymous.get(url).status_code == 404, url


@pytest.mark.parametrize("page", PAGES)
def test_pages_let_the_browser_load_nothing_from_another_host(anonymous: TestClient, page: str) -> None:
    policy = dict(directive.strip().split(" ", 1) for directive in
                  anonymous.get(page).headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert ABSOLUTE_URL.findall(" ".join(policy.values())) == []


def test_openapi_declares_the_bearer_api_keys(anonymous: TestClient) -> None:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert schema["security"] == [{"bearer": []}]
    assert "/api/datasets" in schema["paths"]
    assert not {"/docs", "/redoc"} & set(schema["paths"])


# In a real browser, against a real server.

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not on PATH: scripts/setup-browser.sh installs it, and could not on this machine")
    work = tmp_path_factory.mktemp("api-docs")
    with ServerProcess(work / "data", work / "server.log") as running:
        yield running


def chromium(server: ServerProcess, page: str, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """Chromium run once on ``page`` (it sends no API key); its console messages are in the stderr."""
    command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, server.base_url + page]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_swagger_ui_renders_the_operations(server: ServerProcess, tmp_path: Path) -> None:
    screenshot = tmp_path / "docs.png"
    shot = chromium(server, "/docs", tmp_path / "profile", f"--screenshot={screenshot}")
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 20_000  # a blank page is a few kB
    dom = chromium(server, "/docs", tmp_path / "profile", "--dump-dom")
    assert "/api/datasets" in dom.stdout  # the operations list, drawn from /openapi.json
    assert "btn authorize" in dom.stdout  # the bearer scheme's "Authorize" button
    refused = [line for line in shot.stderr.splitlines() + dom.stderr.splitlines() if CSP_REFUSAL in line]
    assert refused == []  # nothing tried to reach another host, and the policy blocked none of the page's own


def test_redoc_renders_the_operations(server: ServerProcess, tmp_path: Path) -> None:
    dom = chromium(server, "/redoc", tmp_path / "profile", "--dump-dom")
    assert "/api/datasets" in dom.stdout
    refused = [line for line in dom.stderr.splitlines() if CSP_REFUSAL in line]
    # ReDoc draws the Redocly logo from its CDN whatever the options: the one load the policy refuses (and the proof
    # that refusals reach the log the Swagger UI test reads). The image hides itself when it cannot load.
    assert refused, dom.stderr[-3000:]
    assert all("https://cdn.redoc.ly/" in line for line in refused), refused
