"""Issue 9 finding 7: redirects stay on this site, and every page sends the security headers."""

import base64
import hashlib
import os
import re
from urllib.parse import unquote, urlsplit

import pytest

from server.web.security import CONTENT_SECURITY_POLICY, safe_redirect_target
from tests.conftest import PASSWORD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# As they arrive in a raw query string: %09 is a tab, which browsers drop from URLs ("/\t/x" is "//x").
EVIL_TARGETS = ["//evil.example", "/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example",
                "%09//evil.example", "/%5Cevil.example", "%5C%5Cevil.example", "/%5C/evil.example",
                "https://evil.example/", "javascript:alert(1)", "/%00/evil.example", "/%7F/evil.example",
                "/%20/evil.example", "%2F%2Fevil.example", "///evil.example", "/%E3%80%80/x%09"]
LOCAL_TARGETS = [("/households?page=2", "/households?page=2"), ("/app/%23/drafts", "/app/#/drafts"),
                 ("/villages", "/villages")]


def browser_reading(location):
    """Where a browser goes for a Location header: it drops tabs and newlines, reads \\ as /."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    return urlsplit(cleaned)


def stays_here(location):
    parts = browser_reading(location)
    return (not parts.scheme and not parts.netloc and location.startswith("/")
            and not any(ord(c) < 33 or ord(c) == 127 for c in location))


def csrf(client):
    return client.get("/api/v1/csrf").get_json()["csrf_token"]


@pytest.mark.parametrize("raw", EVIL_TARGETS)
def test_language_switch_never_sends_anyone_to_another_site(client, raw):
    r = client.get(f"/lang/en?next={raw}")
    assert r.status_code == 302 and stays_here(r.headers["Location"]), r.headers["Location"]
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize("raw", EVIL_TARGETS)
def test_login_never_sends_anyone_to_another_site(app, raw):
    client = app.test_client()
    page = client.get(f"/login?next={raw}").get_data(as_text=True)
    assert 'name="next" value=""' in page  # the page does not carry the target on
    r = client.post(f"/login?next={raw}", data={"username": "cadre1", "password": PASSWORD,
                                                "csrf_token": csrf(client), "next": unquote(raw)})
    assert r.status_code == 302 and r.headers["Location"] == "/households"
    r = client.get(f"/login?next={raw}")  # already logged in
    assert r.status_code == 302 and r.headers["Location"] == "/households"


def test_the_form_post_refuses_decoded_control_characters_too(app):
    client = app.test_client()
    for target in ("/\t/evil.example", "/\n/evil.example", "/\\evil.example", "\\\\evil.example"):
        r = client.post("/login", data={"username": "cadre1", "password": PASSWORD,
                                        "csrf_token": csrf(client), "next": target})
        assert r.headers["Location"] == "/households", target
        client.post("/logout", data={"csrf_token": csrf(client)})


@pytest.mark.parametrize("raw,expected", LOCAL_TARGETS)
def test_local_targets_still_work(app, raw, expected):
    client = app.test_client()
    assert client.get(f"/lang/zh?next={raw}").headers["Location"] == expected
    page = client.get(f"/login?next={raw}").get_data(as_text=True)
    assert f'name="next" value="{expected}"' in page
    r = client.post("/login", data={"username": "cadre1", "password": PASSWORD, "csrf_token": csrf(client),
                                    "next": expected})
    assert r.headers["Location"] == expected


def test_a_page_behind_login_comes_back_after_it(app):
    client = app.test_client()
    r = client.get("/households?village=v1")
    assert r.status_code == 302
    login_url = r.headers["Location"]
    page = client.get(login_url).get_data(as_text=True)
    assert 'name="next" value="/households?village=v1"' in page


def test_safe_redirect_target_unit():
    assert safe_redirect_target("/a/b?c=d#e") == "/a/b?c=d#e"
    for bad in (None, 5, "", "a", "//x", "/\\x", "/x\\y", "/\tx", "/x\x00", "/" + "a" * 3000):
        assert safe_redirect_target(bad, "/") == "/", repr(bad)


# ---- headers ------------------------------------------------------------------------------------

COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


def check_common(r):
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, (name, r.request.path)


def test_every_page_sends_the_security_headers_and_a_csp(api):
    r = api.get("/login")
    assert r.status_code == 200
    check_common(r)
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    r = api.get("/app/")
    assert r.status_code == 200
    check_common(r)
    # the page policy, plus the hashes of the shell's own inline stylesheet and loader
    assert re.sub(r" 'sha256-[A-Za-z0-9+/=]+'", "", r.headers["Content-Security-Policy"]) == CONTENT_SECURITY_POLICY
    api.login("admin")
    for path in ("/households", "/households/v1-0001", "/households/v1-0001/edit", "/villages",
                 "/admin/users", "/admin/users/cadre1", "/admin/roster", "/villages/v1/print",
                 "/households/nothing-here", "/review", "/admin/audit"):
        r = api.get(path)
        assert r.status_code in (200, 404), path
        check_common(r)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        html = r.get_data(as_text=True)
        # nothing the policy forbids: no inline script, no inline style, no event-handler attribute
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), path


def test_api_replies_and_the_app_files_send_the_headers_and_the_service_worker_still_works(api):
    r = api.get("/api/v1/csrf")
    check_common(r)
    r = api.get("/app/sw.js")
    check_common(r)
    assert r.headers["Service-Worker-Allowed"] == "/app/"
    assert r.mimetype == "text/javascript"
    r = api.get("/app/js/app.js")
    check_common(r)
    r = api.get("/app/pages/print-village.js")
    assert r.status_code == 200


def test_the_app_shell_needs_nothing_the_policy_forbids(api):
    """The shell carries app.css inline (one round trip less before the splash paints on slow 3G)
    and a small loader that asks for the modules after that paint; the policy allows exactly those
    two by their hashes, and nothing else inline: no other script or style, no event attribute."""
    r = api.get("/app/")
    html = r.get_data(as_text=True)
    assert not re.search(r"\sstyle=|\son[a-z]+=", html)
    css = open(os.path.join(ROOT, "static", "css", "app.css"), encoding="utf-8").read()
    assert re.findall(r"<style>(.*?)</style>", html, re.S) == [css]
    scripts = re.findall(r"<script(?![^>]*\ssrc=)([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and scripts[0][0] == "" and "HOME_MODULES" in scripts[0][1]

    def allowed(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    policy = r.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'", f"style-src 'self' {allowed(css)}").replace(
        "script-src 'self'", f"script-src 'self' {allowed(scripts[0][1])}")
    assert "unsafe-inline" not in policy
    again = api.get("/app/", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_a_pdf_has_no_csp_so_browsers_can_show_it(api):
    api.login("cadre1")
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    check_common(r)
    assert "Content-Security-Policy" not in r.headers
