"""The phone API (views): bootstrap, form definitions, submission push and attachment upload.
Views check access, parse and call the submissions owner; the rules live there."""

import hashlib
import threading

from flask import Blueprint, current_app, jsonify, make_response, request
from flask_login import current_user, login_required

from server.forms import formdefs
from server.core import images
from server.web.auth import csrf_token
from server.web.errors import localise_errors
from server.web.parse import int_arg, json_body, parse_int
from server.core.problems import Problem
from server.records import epochs, submissions, villages

bp = Blueprint("sync", __name__)


def forms():
    return formdefs.registry()


# ---- bootstrap and forms -----------------------------------------------------------------------


@bp.get("/api/v1/bootstrap")
@login_required
def bootstrap():
    epoch = epochs.current()
    epochs.note_seen(current_user.id, epoch)
    return jsonify({"user": current_user.public(),
                    "epoch": epoch,
                    "villages": villages.in_scope(current_user),
                    "forms": forms().current(),
                    "settings": formdefs.served_settings(current_app),
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


# ---- submissions -------------------------------------------------------------------------------


def _result(r):
    return dict(r, errors=localise_errors(r.get("errors") or []))


@bp.post("/api/v1/submissions")
@login_required
def post_submissions():
    body = json_body(shape='{"submissions": [...]}')
    items = body.get("submissions")
    if not isinstance(items, list) or set(body) - {"submissions"}:
        raise Problem("bad_body", shape='{"submissions": [...]}')
    limit = current_app.config["MAX_BATCH_ITEMS"]
    if len(items) > limit:
        raise Problem("too_many_items", limit=limit)
    if take_fault("fail_before_store"):
        raise Problem("test_fault")
    registry, settings = forms(), formdefs.served_settings(current_app)
    max_bytes = current_app.config["MAX_ATTACHMENT_BYTES"]
    user = current_user._get_current_object()  # once, not through the proxy for every item
    clock = submissions.push_clock()
    results = [None] * len(items)
    prepared, slots, seen = [], [], {}
    for i, item in enumerate(items):
        p, errors = submissions.parse_item(user, item, registry, settings,
                                           max_attachment_bytes=max_bytes, clock=clock)
        if errors:
            uuid = item.get("uuid") if isinstance(item, dict) else None
            results[i] = {"uuid": uuid if isinstance(uuid, str) and len(uuid) <= 64 else None,
                          "status": "rejected", "errors": errors}
        elif p["record"]["uuid"] in seen:  # the same uuid twice in one batch: like a repeat
            same = prepared[seen[p["record"]["uuid"]]]["fingerprint"] == p["fingerprint"]
            results[i] = {"uuid": p["record"]["uuid"], "status": "duplicate" if same else "rejected",
                          "errors": [] if same else [{"field": "uuid", "zh": "该 uuid 已用于其他内容。",
                                                       "en": "uuid already used with other content"}]}
        else:
            seen[p["record"]["uuid"]] = len(prepared)
            prepared.append(p)
            slots.append(i)
    if prepared:
        for i, r in zip(slots, submissions.ingest(user, prepared)):
            results[i] = r
    if take_fault("fail_after_store"):
        raise Problem("test_fault")
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


def sniff_type(data):
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


@bp.put("/api/v1/submissions/<sub_uuid>/attachments/<name>")
@login_required
def put_attachment(sub_uuid, name):
    if not formdefs.is_safe_attachment_name(name):
        raise Problem("bad_attachment_name")
    doc = submissions.get_for(current_user, sub_uuid)
    # Only the cadre who made it may add files to it; others get the same 404 as for nothing there.
    if doc is None or (doc["cadre_id"] != current_user.id and not current_user.is_admin):
        raise Problem("submission_not_found")
    declared = next((a for a in doc["attachments"] if a["name"] == name), None)
    if declared is None:
        raise Problem("attachment_not_declared")
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem("too_large", limit=f"{limit // (1024 * 1024)} MB")
    data = request.get_data(cache=False)
    if len(data) > limit:
        raise Problem("too_large", limit=f"{limit // (1024 * 1024)} MB")
    sent_sum = (request.headers.get("X-Content-SHA256") or "").lower()
    actual = hashlib.sha256(data).hexdigest()
    if sent_sum != actual:
        raise Problem("checksum_mismatch")
    if actual != declared["sha256"] or len(data) != declared["size"]:
        raise Problem("attachment_not_as_declared")
    if sniff_type(data) != declared["type"]:
        raise Problem("attachment_bad_type")
    # The header only, then a bounded check: a 657 KB PNG may claim 13000×13000 pixels.
    max_pixels = current_app.config.get("IMAGE_MAX_PIXELS", images.MAX_PIXELS)
    try:
        images.check_upload(data, declared["type"], max_pixels)
    except images.ImageRefused as e:
        if e.reason == "too_large":
            raise Problem("image_too_large", limit=f"{max_pixels / 1e6:g}")
        raise Problem("image_unreadable")
    if declared.get("received"):
        return jsonify({"status": "duplicate", "name": name})
    complete = submissions.store_attachment(current_app.config["FILES_DIR"], doc, name, data)
    return jsonify({"status": "stored", "name": name, "complete": complete})


# ---- test-only fault switch (JIEDUI_TEST_FAULTS=1) -------------------------------------------

_faults = {"fail_before_store": 0, "fail_after_store": 0}
_faults_lock = threading.Lock()


def take_fault(kind):
    if not current_app.config.get("TEST_FAULTS"):
        return False
    with _faults_lock:
        if _faults[kind] > 0:
            _faults[kind] -= 1
            return True
    return False


@bp.post("/api/v1/_test/faults")
def set_faults():
    """Lets browser tests make pushes fail before or after storing; absent unless switched on."""
    if not current_app.config.get("TEST_FAULTS"):
        raise Problem("not_found")
    body = json_body()
    with _faults_lock:
        for k in _faults:
            v = body.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000:
                _faults[k] = v
        return jsonify(dict(_faults))
