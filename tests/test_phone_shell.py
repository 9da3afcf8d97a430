"""How the phone app is served: the shell page with its stylesheet inline and a CSP that admits
exactly that style; what the phone downloads on slow 3G gzipped when it says it accepts gzip."""

import base64
import gzip
import hashlib
import json
import pathlib
import re

from tests.conftest import Api

CSS = pathlib.Path(__file__).resolve().parent.parent / "static" / "css" / "app.css"


def _shell(client, **headers):
    r = client.get("/app/", headers=headers)
    assert r.status_code == 200
    return r


def test_the_shell_carries_its_stylesheet_inline_and_its_policy_admits_that_style(client):
    r = _shell(client)
    html = r.get_data(as_text=True)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1 and '<link rel="stylesheet"' not in html
    assert styles[0] == CSS.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    policy = r.headers["Content-Security-Policy"]
    assert f"'sha256-{digest}'" in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy
    # Scripts stay unrestricted: browser tests evaluate predicates with eval (wait_for_function).
    assert "script-src" not in policy and "default-src" not in policy
    assert r.headers["Cache-Control"] == "no-cache"
    assert '<link rel="modulepreload" href="/app/js/app.js">' in html


def test_the_shell_revalidates_with_a_304_and_travels_gzipped(client):
    first = _shell(client, **{"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert b"<style>" in gzip.decompress(first.get_data())
    again = client.get("/app/", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    plain = _shell(client)
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] != first.headers["ETag"]  # one tag per representation


def test_the_phones_data_is_gzipped_only_when_asked(app):
    api = Api(app.test_client())
    api.login("cadre1")
    zipped = api.get("/api/v1/forms/household_visit", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    definition = json.loads(gzip.decompress(zipped.get_data()))
    assert definition["id"] == "household_visit"
    assert len(zipped.get_data()) * 3 < len(json.dumps(definition).encode())
    plain = api.get("/api/v1/forms/household_visit")
    assert "Content-Encoding" not in plain.headers and plain.get_json()["id"] == "household_visit"
    small = api.get("/api/v1/csrf", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # not worth it below a kilobyte
