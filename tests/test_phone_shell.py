"""How the phone app is served on slow 3G: the shell gzipped with the policy every page sends, and
what the phone downloads on its first sync gzipped too, only when the phone says it accepts gzip."""

import gzip
import json

from server.security import CONTENT_SECURITY_POLICY
from tests.conftest import Api


def test_the_shell_travels_gzipped_under_the_pages_policy(client):
    r = client.get("/app/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(r.get_data()).decode()
    assert '<link rel="modulepreload" href="/app/js/app.js"' in html
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["Cache-Control"] == "no-cache"
    plain = client.get("/app/")
    assert "Content-Encoding" not in plain.headers and b"modulepreload" in plain.get_data()


def test_the_phones_data_is_gzipped_only_when_asked(app):
    api = Api(app.test_client())
    api.login("cadre1")
    zipped = api.get("/api/v1/forms/household_visit", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    definition = json.loads(gzip.decompress(zipped.get_data()))
    assert definition["id"] == "household_visit"
    assert len(zipped.get_data()) * 3 < len(json.dumps(definition).encode())
    plain = api.get("/api/v1/forms/household_visit")
    assert "Content-Encoding" not in plain.headers and plain.get_json()["id"] == "household_visit"
    small = api.get("/api/v1/csrf", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # not worth it below a kilobyte
