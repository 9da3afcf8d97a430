"""Serves the phone app (static/) under /app/, with the headers its service worker needs."""

import gzip

from flask import Blueprint, current_app, redirect, request, send_from_directory

bp = Blueprint("phone", __name__)

COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/json", "application/manifest+json")


@bp.get("/app")
def app_no_slash():
    return redirect("/app/")


@bp.get("/app/")
def shell():
    return asset("index.html")


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
