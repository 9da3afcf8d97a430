"""How the phone app is served on slow 3G: the shell gzipped with the policy every page sends, and
what the phone downloads on its first sync gzipped too, only when the phone says it accepts gzip."""

import gzip
import json
import re

from server.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import Api


def test_the_shell_travels_gzipped_under_the_pages_policy(client):
    r = client.get("/app/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(r.get_data()).decode()
    assert 'const HOME_MODULES = ["app", ' in html
    # the page policy, plus the hashes of the shell's own inline stylesheet and loader
    assert re.sub(r" 'sha256-[A-Za-z0-9+/=]+'", "", r.headers["Content-Security-Policy"]) == CONTENT_SECURITY_POLICY
    assert "<style>" in html and '<link rel="stylesheet"' not in html
    assert r.headers["Cache-Control"] == "no-cache"
    plain = client.get("/app/")
    assert "Content-Encoding" not in plain.headers and b"HOME_MODULES" in plain.get_data()


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


def js_strings(path):
    """The key: "text" pairs of one of the phone's string tables."""
    text = open(path, encoding="utf-8").read()
    return dict(re.findall(r'^\s+([a-z_]+): "([^"\n]*)",?$', text, re.M))


def test_the_phone_names_categories_and_review_states_as_the_server_does():
    """One set of words: the phone's labels of household categories (both languages) and of review
    states (Chinese) are the server's (issue 10 found 'Poverty-alleviated' beside 'Out of poverty')."""
    from server.core.i18n import CATEGORY_LABELS
    from server.forms.labels import STATES
    zh, en = js_strings("static/js/i18n.js"), js_strings("static/js/i18n-en.js")
    for code, (zh_word, en_word) in CATEGORY_LABELS.items():
        assert zh[f"cat_{code}"] == zh_word and en[f"cat_{code}"] == en_word, code
    phone_states = {"received": "review_received", "has_issues": "review_issues",
                    "approved": "review_approved", "superseded": "review_superseded"}
    for code, key in phone_states.items():
        assert zh[key] == STATES[code][0], code
