"""A phone's device token (views): registered once logged in; then, without any session (a
deactivated user has none), the phone asks whether it must erase itself, makes its last push of
unsent visits and photos while an erase is requested, and confirms the erase (audit "phone
erased"). The rules live in records/users.py (devices) and the submissions and attachments owners.

Token routes carry no cookie authority, so they are exempt from CSRF (`csrf_exempt`): a forged
request from another site could only ask a question whose answer it cannot read, or push as a
device whose token it does not know."""

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required

from server.core import images
from server.core.problems import Problem
from server.forms import formdefs
from server.records import attachments, submissions
from server.records import users as user_records
from server.web.auth import User
from server.web.errors import localise_errors
from server.web.parse import json_body

bp = Blueprint("device", __name__)


def csrf_exempt(view):
    view.csrf_exempt = True
    return view


@bp.post("/api/v1/device")
@login_required
def register():
    token = user_records.register_device(current_user.id)
    if token is None:
        raise Problem("login_required")
    return jsonify({"token": token})


def _erasing_user(token):
    """The account whose phone this is, only while that phone is to erase itself; else 404 (the
    same answer as an unknown token)."""
    doc = user_records.device_erase_requested(token)
    if doc is None:
        raise Problem("device_not_found")
    return User(doc)


@bp.get("/api/v1/device/<token>/status")
@csrf_exempt
def device_status(token):
    resp = jsonify({"erase": user_records.device_erase_requested(token) is not None})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/api/v1/device/<token>/submissions")
@csrf_exempt
def final_push(token):
    """The phone's last push before it erases itself: the same checks as a logged-in push."""
    user = _erasing_user(token)
    body = json_body(shape='{"submissions": [...]}')
    items = body.get("submissions")
    if not isinstance(items, list) or set(body) - {"submissions"}:
        raise Problem("bad_body", shape='{"submissions": [...]}')
    limit = current_app.config["MAX_BATCH_ITEMS"]
    if len(items) > limit:
        raise Problem("too_many_items", limit=limit)
    results = submissions.receive(user, items, formdefs.registry(), formdefs.served_settings(current_app),
                                  max_attachment_bytes=current_app.config["MAX_ATTACHMENT_BYTES"])
    return jsonify({"results": [dict(r, errors=localise_errors(r.get("errors") or [])) for r in results]})


@bp.put("/api/v1/device/<token>/submissions/<sub_uuid>/attachments/<name>")
@csrf_exempt
def final_attachment(token, sub_uuid, name):
    user = _erasing_user(token)
    doc = submissions.get_for(user, sub_uuid) if attachments.is_safe_name(name) else None
    result = attachments.accept(
        user, doc, name, lambda: request.get_data(cache=False),
        request.headers.get("X-Content-SHA256"), content_length=request.content_length,
        files_dir=current_app.config["FILES_DIR"], max_bytes=current_app.config["MAX_ATTACHMENT_BYTES"],
        max_pixels=current_app.config.get("IMAGE_MAX_PIXELS", images.MAX_PIXELS))
    return jsonify(dict(result, name=name))


@bp.post("/api/v1/device/<token>/erased")
@csrf_exempt
def erased(token):
    if not user_records.device_erased(token):
        raise Problem("device_not_found")
    return jsonify({"ok": True})
