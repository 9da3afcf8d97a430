"""Serves the phone app (static/) under /app/, with the headers its service worker needs."""


from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("phone", __name__)


@bp.get("/app/")
def shell():
    resp = send_from_directory(current_app.config["STATIC_APP_DIR"], "index.html")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


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
    return resp


@bp.get("/app")
def app_no_slash():
    from flask import redirect
    return redirect("/app/")
