"""Serves the phone app (static/) under /app/, with the headers its service worker needs.

The shell page carries its stylesheet inline: on slow 3G a separate stylesheet costs a new
connection and a round trip before anything is painted. static/index.html keeps a plain <link>
(the file stays editable and testable as it is); the inlining happens here, once per change of
either file, and the page's Content-Security-Policy admits that one inline style by its hash."""

import base64
import gzip
import hashlib
import os

from flask import Blueprint, current_app, make_response, redirect, request, send_from_directory

bp = Blueprint("phone", __name__)

COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/json", "application/manifest+json")
STYLESHEET = '<link rel="stylesheet" href="/app/css/app.css">'
_shells = {}  # (app dir, mtimes) -> (html bytes, etag, policy)


def shell_policy(style_hash):
    """Styles from this site and the one inline style (by its hash); no plugins, no <base>, never
    framed. Scripts are not restricted here: browser automation (Playwright's wait_for_function)
    evaluates its predicates with eval, which a script-src or default-src policy would refuse."""
    return (f"style-src 'self' 'sha256-{style_hash}'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def inline_shell(app_dir):
    """(html, etag, policy) of index.html with app.css inlined; rebuilt when either file changes."""
    index, css = os.path.join(app_dir, "index.html"), os.path.join(app_dir, "css", "app.css")
    key = (app_dir, os.stat(index).st_mtime_ns, os.stat(css).st_mtime_ns)
    if key not in _shells:
        with open(index, encoding="utf-8") as f:
            html = f.read()
        with open(css, encoding="utf-8") as f:
            style = f.read()
        style_hash = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        if STYLESHEET in html:
            html = html.replace(STYLESHEET, f"<style>{style}</style>", 1)
        body = html.encode()
        _shells.clear()
        _shells[key] = (body, hashlib.sha256(body).hexdigest()[:32], shell_policy(style_hash))
    return _shells[key]


@bp.get("/app")
def app_no_slash():
    return redirect("/app/")


@bp.get("/app/")
@bp.get("/app/index.html")
def shell():
    body, etag, policy = inline_shell(current_app.config["STATIC_APP_DIR"])
    resp = make_response(body)
    resp.mimetype = "text/html"
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = policy
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    resp.set_etag(f"{etag}-gz" if gzipped else etag)  # one tag per representation
    resp.make_conditional(request)
    return compress(resp)


@bp.get("/app/<path:path>")
def asset(path):
    resp = send_from_directory(current_app.config["STATIC_APP_DIR"], path)
    # Revalidate every time: the service worker is what keeps the app usable offline.
    resp.headers["Cache-Control"] = "no-cache"
    if path == "sw.js":
        resp.headers["Service-Worker-Allowed"] = "/app/"
    if path.endswith(".webmanifest"):
        resp.mimetype = "application/manifest+json"
    if path.endswith(".js"):
        resp.mimetype = "text/javascript"
    return compress(resp)


@bp.after_app_request
def compress_phone_data(resp):
    """What the phone downloads on its first sync (form definitions, a village's households, the
    cadre's own submissions) is JSON that gzip shrinks five- to sevenfold: on slow 3G that is the
    difference between seconds and a good part of a minute before Today can show anything.
    Only GET answers of the phone's API, only when the phone says it accepts gzip."""
    if (request.method == "GET" and request.path.startswith("/api/v1/")
            and not resp.direct_passthrough and "Content-Encoding" not in resp.headers
            and (resp.content_length or 0) > 1024):
        return compress(resp)
    return resp


def compress(resp):
    """Phones on slow 3G: the shell is text and shrinks to a third, so send it gzipped."""
    if (resp.status_code != 200 or resp.mimetype not in COMPRESSIBLE
            or "gzip" not in request.headers.get("Accept-Encoding", "")):
        return resp
    resp.direct_passthrough = False
    resp.set_data(gzip.compress(resp.get_data(), compresslevel=6))
    resp.headers["Content-Encoding"] = "gzip"
    resp.headers.add("Vary", "Accept-Encoding")
    return resp
