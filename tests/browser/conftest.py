"""Browser fixtures: the real server in a subprocess, Debian's Chromium driven by Playwright as a
360x740 touch phone. Browsers are never downloaded: Chromium comes from apt (make test)."""

import os
import shutil

import pytest

from tests.conftest import PASSWORD  # noqa: F401  (re-exported for the browser tests)
from tests.live import Client, LiveServer, seed

CHROMIUM = os.environ.get("JIEDUI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
PHONE = dict(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
             locale="zh-CN", device_scale_factor=2)

if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
    pytest.skip(f"Chromium not found at {CHROMIUM}: run `make test`, which installs it",
                allow_module_level=True)


@pytest.fixture
def server(tmp_path):
    """A fresh data folder with the tests' small world; the test-only fault switch is on."""
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    live = LiveServer(data, faults=True).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch_phone(playwright_instance, tmp_path):
    """launch_phone(profile_name) opens a phone with a persistent profile folder, so closing and
    reopening it keeps IndexedDB, the service worker and cookies, as a real phone does."""
    opened = []

    def launch(name="phone", **extra):
        ctx = playwright_instance.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{name}"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            **{**PHONE, **extra})
        opened.append(ctx)
        return ctx

    yield launch
    for ctx in opened:
        try:
            ctx.close()
        except Exception:
            pass


@pytest.fixture
def server_client(server):
    """Checks what the server holds, through its own API, as a supervisor."""
    c = Client(server.url)
    c.login("super", PASSWORD)
    return c
