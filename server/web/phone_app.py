"""Serves the phone app (static/) under /app/, with the headers its service worker needs, and
gzips what a phone downloads (the shell, and the data of its first sync) when it accepts gzip."""

import base64
import gzip
import hashlib
import os
import re

from flask import Blueprint, current_app, redirect, request, send_from_directory

from server.web.security import policy_allowing

bp = Blueprint("phone", __name__)

COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/json", "application/manifest+json")


@bp.get("/app")
def app_no_slash():
    return redirect("/app/")


STYLESHEET_LINK = '<link rel="stylesheet" href="/app/css/app.css">'
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_shell = (None, None)  # (what it was built from, (html, policy, etag)): replaced whole, never edited


@bp.get("/app/")
def shell():
    """index.html with app.css inlined: on slow 3G the splash paints after one round trip instead
    of two, and the page's small inline script asks for the modules only after that paint. Both
    are allowed by their hashes, so the policy still forbids any other inline style or script."""
    html, policy, etag = _shell_page(current_app.config["STATIC_APP_DIR"])
    resp = current_app.response_class(html, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = policy
    resp.set_etag(etag)
    resp = resp.make_conditional(request)
    return compress(resp)


def _sha256(text):
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _shell_page(static_dir):
    """(html, its Content-Security-Policy, etag), rebuilt when either file changes."""
    global _shell
    paths = (os.path.join(static_dir, "index.html"), os.path.join(static_dir, "css", "app.css"))
    stats = [os.stat(p) for p in paths]  # once each: this runs on every open of the app
    key = tuple((p, st.st_mtime_ns, st.st_size) for p, st in zip(paths, stats))
    built_from, page = _shell  # one read: another request may replace it meanwhile
    if built_from != key:
        with open(paths[0], encoding="utf-8") as f:
            source = f.read()
        with open(paths[1], encoding="utf-8") as f:
            css = f.read()
        if STYLESHEET_LINK not in source:
            raise RuntimeError(f"index.html lost its {STYLESHEET_LINK}")
        html = source.replace(STYLESHEET_LINK, f"<style>{css}</style>", 1)
        inline = _INLINE.findall(html)
        policy = policy_allowing(styles=[_sha256(body) for kind, body in inline if kind == "style"],
                                 scripts=[_sha256(body) for kind, body in inline if kind == "script"])
        page = (html, policy, hashlib.sha256(html.encode()).hexdigest()[:20])
        _shell = (key, page)
    return page


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
