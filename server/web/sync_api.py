"""The phone API (views): bootstrap, form definitions, submission push and attachment upload.
Views check access, parse and call the submissions owner; the rules live there."""

from flask import Blueprint, current_app, jsonify, make_response, request
from flask_login import current_user, login_required

from server.forms import formdefs
from server.core import images
from server.web.auth import csrf_token
from server.web.errors import localise_errors
from server.web.parse import int_arg, json_body, parse_int
from server.core.problems import Problem
from server.records import attachments, epochs, submissions, villages

bp = Blueprint("sync", __name__)


def forms():
    return formdefs.registry()


# ---- bootstrap and forms -----------------------------------------------------------------------


def _phone_lock():
    """Whether the phone must keep its data under an app PIN, and after how long idle it locks."""
    cfg = current_app.config
    return {"required": bool(cfg.get("PHONE_LOCK")), "idle_minutes": cfg.get("PHONE_LOCK_IDLE_MINUTES", 5),
            "wrong_pins": 10}


@bp.get("/api/v1/bootstrap")
@login_required
def bootstrap():
    epoch = epochs.current()
    epochs.note_seen(current_user.id, epoch)
    return jsonify({"user": current_user.public(),
                    "epoch": epoch,
                    "villages": villages.in_scope(current_user),
                    "forms": forms().current(),
                    "settings": dict(formdefs.served_settings(current_app), phone_lock=_phone_lock()),
                    "csrf_token": csrf_token()})


@bp.get("/api/v1/forms/<form_id>")
@login_required
def form_definition(form_id):
    version = request.args.get("version")
    if version is not None:
        version = parse_int(version, 1, 10**6)
        if version is None:
            raise Problem("bad_parameter", name="version", reason_zh="须为整数",
                          reason_en="must be a whole number")
    definition = forms().get(form_id, version)
    if definition is None:
        raise Problem("form_not_found")
    etag = forms().sha256(form_id, definition["version"])
    if request.if_none_match.contains(etag):
        return "", 304, {"ETag": f'"{etag}"'}
    resp = make_response(jsonify(definition))
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/api/v1/forms/<form_id>/<version>.xlsx")
@login_required
def form_xlsform(form_id, version):
    """The form version as an XLSForm workbook (Excel, ODK, Kobo; importing it again gives the
    same definition)."""
    number = parse_int(version, 1, 10**6)
    if number is None:
        raise Problem("bad_parameter", name="version", reason_zh="须为整数", reason_en="must be a whole number")
    definition = forms().get(form_id, number)
    if definition is None:
        raise Problem("form_not_found")
    from server.forms import xlsform_write
    resp = make_response(xlsform_write.write_xlsform(definition))
    resp.headers["Content-Type"] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    resp.headers["Content-Disposition"] = f'attachment; filename="{form_id}-v{number}.xlsx"'
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# ---- submissions -------------------------------------------------------------------------------


def _result(r):
    return dict(r, errors=localise_errors(r.get("errors") or []))


@bp.post("/api/v1/submissions")
@login_required
def post_submissions():
    return push_as(current_user._get_current_object())


def push_as(user):
    """A push read from the request and received as `user`: the phone's, and a lost phone's last
    one through its device token (device_api.py)."""
    body = json_body(shape='{"submissions": [...]}')
    items = body.get("submissions")
    if not isinstance(items, list) or set(body) - {"submissions"}:
        raise Problem("bad_body", shape='{"submissions": [...]}')
    limit = current_app.config["MAX_BATCH_ITEMS"]
    if len(items) > limit:
        raise Problem("too_many_items", limit=limit)
    results = submissions.receive(
        user, items, forms(), formdefs.served_settings(current_app),
        max_attachment_bytes=current_app.config["MAX_ATTACHMENT_BYTES"])
    return jsonify({"results": [_result(r) for r in results]})


@bp.get("/api/v1/submissions")
@login_required
def list_submissions():
    """?household_id=ID (in scope), ?since=SEQ (the caller's own, paged), or ?incomplete=1."""
    household_id = request.args.get("household_id")
    if household_id:
        return jsonify({"submissions": submissions.for_household(current_user, household_id)})
    if request.args.get("incomplete") == "1":
        return jsonify({"submissions": submissions.incomplete(current_user)})
    if "since" in request.args:
        since = int_arg("since", 0, 0, 2**62)
        limit = int_arg("limit", 200, 1, 1000)
        epoch, reset = epochs.check_cursor(current_user, since, epoch_arg())
        if reset:
            return jsonify({"submissions": [], "next": 0, "reset": True, "epoch": epoch})
        page, nxt = submissions.own_since(current_user, since, limit)
        return jsonify({"submissions": page, "next": nxt, "epoch": epoch})
    raise Problem("bad_parameter", name="household_id|since|incomplete",
                  reason_zh="需要 household_id、since 或 incomplete 之一",
                  reason_en="give household_id, since or incomplete")


@bp.post("/api/v1/submissions/known")
@login_required
def known_submissions():
    """After a restore: which of the phone's visits the server holds, and their missing photos."""
    shape = '{"uuids": ["..."]}'
    body = json_body(shape=shape)
    uuids = body.get("uuids")
    if not isinstance(uuids, list) or set(body) - {"uuids"}:
        raise Problem("bad_body", shape=shape)
    if len(uuids) > submissions.MAX_KNOWN:
        raise Problem("too_many_items", limit=submissions.MAX_KNOWN)
    clean = [submissions.canonical_uuid(u.lower()) if isinstance(u, str) else None for u in uuids]
    if None in clean:
        raise Problem("bad_body", shape=shape)
    return jsonify({"known": submissions.known(current_user, list(dict.fromkeys(clean))),
                    "epoch": epochs.current()})


def epoch_arg():
    """The epoch a phone says it works in (?epoch=), or None."""
    value = request.args.get("epoch")
    return value[:64] if value else None


@bp.get("/api/v1/submissions/<sub_uuid>")
@login_required
def get_submission(sub_uuid):
    doc = submissions.get_for(current_user, sub_uuid)
    if doc is None:
        raise Problem("submission_not_found")
    return jsonify(submissions.public(doc))


# ---- attachments -------------------------------------------------------------------------------


@bp.put("/api/v1/submissions/<sub_uuid>/attachments/<name>")
@login_required
def put_attachment(sub_uuid, name):
    return upload_as(current_user._get_current_object(), sub_uuid, name)


def upload_as(user, sub_uuid, name):
    """An attachment's bytes from the request, accepted for `user`'s submission."""
    doc = submissions.get_for(user, sub_uuid) if attachments.is_safe_name(name) else None
    result = attachments.accept(
        user, doc, name, lambda: request.get_data(cache=False),
        request.headers.get("X-Content-SHA256"), content_length=request.content_length,
        files_dir=current_app.config["FILES_DIR"], max_bytes=current_app.config["MAX_ATTACHMENT_BYTES"],
        max_pixels=current_app.config.get("IMAGE_MAX_PIXELS", images.MAX_PIXELS))
    return jsonify(dict(result, name=name))
