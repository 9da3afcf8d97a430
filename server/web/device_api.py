"""A phone's device token (views): registered once logged in; then, without any session (a
deactivated user has none), the phone asks whether it must erase itself, makes its last push of
unsent visits and photos while an erase is requested, and confirms the erase (audit "phone
erased"). The rules live in records/users.py (devices) and the submissions and attachments owners.

Token routes carry no cookie authority, so they are exempt from CSRF (`csrf_exempt`): a forged
request from another site could only ask a question whose answer it cannot read, or push as a
device whose token it does not know."""

from flask import Blueprint, jsonify
from flask_login import current_user, login_required

from server.core.problems import Problem
from server.records import users as user_records
from server.web.auth import User
from server.web import sync_api

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
    return sync_api.push_as(_erasing_user(token))


@bp.put("/api/v1/device/<token>/submissions/<sub_uuid>/attachments/<name>")
@csrf_exempt
def final_attachment(token, sub_uuid, name):
    return sync_api.upload_as(_erasing_user(token), sub_uuid, name)


@bp.post("/api/v1/device/<token>/erased")
@csrf_exempt
def erased(token):
    if not user_records.device_erased(token):
        raise Problem("device_not_found")
    return jsonify({"ok": True})
