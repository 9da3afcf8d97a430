"""The phone API: bootstrap, form definitions, idempotent submission ingest and attachment upload."""

import hashlib
import json
import os
import re
import threading
import uuid as uuidlib

from flask import Blueprint, current_app, jsonify, make_response, request
from flask_login import current_user, login_required

from . import formdefs, submissions
from .auth import csrf_token
from .errors import ApiError, int_arg
from .households import get_household_for_user, list_villages
from .i18n import tr

bp = Blueprint("sync", __name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ALLOWED_TYPES = {"image/jpeg", "image/png"}
ITEM_KEYS = {"uuid", "form", "form_version", "household_id", "created_at", "answers", "attachments",
             "base_version"}


def init_app(app):
    """Form definitions are checked at start-up: a broken file stops the app, naming file and field."""
    app.extensions["jiedui_forms"] = formdefs.FormRegistry.load(
        app.config["FORMS_DIR"], os.path.join(app.config["DATA_DIR"], "forms"),
        settings=form_settings(app))


def form_settings(app):
    return {"pv_yield_kwh_per_kw": app.config["PV_YIELD_KWH_PER_KW"]}


def forms():
    return current_app.extensions["jiedui_forms"]


# ---- bootstrap and forms -----------------------------------------------------------------------


@bp.get("/api/v1/bootstrap")
@login_required
def bootstrap():
    return jsonify({"user": current_user.public(),
                    "villages": list_villages(current_user),
                    "forms": forms().current(),
                    "settings": form_settings(current_app),
                    "csrf_token": csrf_token()})


@bp.get("/api/v1/forms/<form_id>")
@login_required
def form_definition(form_id):
    version = request.args.get("version")
    if version is not None:
        if not version.isdigit():
            raise ApiError(400, "bad_parameter", "version 须为整数。", "version must be an integer.")
        version = int(version)
    definition = forms().get(form_id, version)
    if definition is None:
        raise ApiError(404, "unknown_form", "没有这个表单。", "No such form.")
    etag = forms().sha256(form_id, definition["version"])
    if request.if_none_match.contains(etag):
        return "", 304, {"ETag": f'"{etag}"'}
    resp = make_response(jsonify(definition))
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# ---- submissions -------------------------------------------------------------------------------


def fingerprint(item):
    """What the phone sent, canonically: a repeated uuid is a duplicate only if this matches."""
    content = {k: item.get(k) for k in ("form", "form_version", "household_id", "created_at",
                                         "answers", "attachments", "base_version")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def _err(field, zh, en):
    return {"field": field, "message": tr(zh, en), "message_zh": zh, "message_en": en}


def check_item(user, item, definitions):
    """Everything about one item that needs no store write; returns (prepared, errors).
    `definitions` caches form lookups for the batch (the registry hands out copies)."""
    if not isinstance(item, dict):
        return None, [_err(None, "条目须为 JSON 对象。", "Each item must be a JSON object.")]
    errors = []
    unknown = sorted(set(item) - ITEM_KEYS)
    if unknown:
        errors.append(_err(unknown[0], f"未知的属性：{', '.join(unknown)}",
                           f"Unknown properties: {', '.join(unknown)}"))
    sub_uuid = item.get("uuid")
    try:
        if not isinstance(sub_uuid, str) or str(uuidlib.UUID(sub_uuid)) != sub_uuid.lower():
            raise ValueError
    except ValueError:
        return None, [_err("uuid", "uuid 格式不正确。", "uuid is not a UUID.")]
    sub_uuid = sub_uuid.lower()
    definition = None
    form_id, version = item.get("form"), item.get("form_version")

    def lookup(form_id, version=None):
        key = (form_id, version)
        if key not in definitions:
            definitions[key] = forms().get(form_id, version)
        return definitions[key]

    if not isinstance(form_id, str) or lookup(form_id) is None:
        errors.append(_err("form", "未知的表单。", "Unknown form."))
    elif isinstance(version, bool) or not isinstance(version, int) or lookup(form_id, version) is None:
        errors.append(_err("form_version", "未知的表单版本。", "Unknown form version."))
    else:
        definition = lookup(form_id, version)
    household = get_household_for_user(user, item.get("household_id")) \
        if isinstance(item.get("household_id"), str) else None
    if household is None:
        errors.append(_err("household_id", "找不到该农户，或不在你的范围内。",
                           "No such household in your scope."))
    created_at = item.get("created_at")
    if not isinstance(created_at, str) or not 10 <= len(created_at) <= 40:
        errors.append(_err("created_at", "created_at 须为 ISO 时间。", "created_at must be an ISO time."))
    base = item.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 0):
        errors.append(_err("base_version", "base_version 须为整数。", "base_version must be an integer."))
    attachments, att_errors = check_attachments(item.get("attachments", []))
    errors.extend(att_errors)
    if not isinstance(item.get("answers"), dict):
        errors.append(_err("answers", "answers 须为对象。", "answers must be an object."))
    if errors or definition is None:
        return None, errors
    answers, answer_errors = formdefs.validate_answers(definition, item["answers"],
                                                       settings=form_settings(current_app))
    for e in answer_errors:
        errors.append(_err(e.get("field"), e.get("zh", ""), e.get("en", "")))
    declared = {a["name"] for a in attachments}
    for name in formdefs.attachment_names(definition, answers):
        if name not in declared:
            errors.append(_err(name, "答案引用的附件未声明。", "An answer names an attachment that is not declared."))
    if errors:
        return None, errors
    return {"uuid": sub_uuid, "form": form_id, "form_version": version,
            "household_id": household["id"], "village_id": household["village_id"],
            "cadre_id": user.id, "answers": answers, "attachments": attachments,
            "created_at": created_at, "base_version": base,
            "fingerprint": fingerprint(item),
            "household_updates": formdefs.household_updates(definition, answers, at=created_at)}, []


def check_attachments(raw):
    if not isinstance(raw, list) or len(raw) > 20:
        return [], [_err("attachments", "attachments 须为列表（最多 20 个）。",
                         "attachments must be a list (at most 20).")]
    out, errors, seen = [], [], set()
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    for a in raw:
        if not isinstance(a, dict) or not formdefs.is_safe_attachment_name(a.get("name")):
            errors.append(_err("attachments", "附件名称不合法。", "Bad attachment name."))
            continue
        name = a["name"]
        if name in seen:
            errors.append(_err(name, "附件名称重复。", "Duplicate attachment name."))
        seen.add(name)
        if not isinstance(a.get("sha256"), str) or not SHA256_RE.match(a["sha256"]):
            errors.append(_err(name, "附件校验值须为 64 位十六进制。", "sha256 must be 64 hex digits."))
        size = a.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= limit:
            errors.append(_err(name, "附件大小不合法或超过上限。", "Attachment size is invalid or too large."))
        if a.get("type") not in ALLOWED_TYPES:
            errors.append(_err(name, "附件类型须为 JPEG 或 PNG 图片。", "Attachment type must be JPEG or PNG."))
        out.append({"name": name, "sha256": a.get("sha256"), "size": size, "type": a.get("type"),
                    "received": False})
    return out, errors


@bp.post("/api/v1/submissions")
@login_required
def post_submissions():
    if request.content_length and request.content_length > current_app.config["MAX_JSON_BYTES"]:
        raise ApiError(413, "too_large", "一次同步的内容太大，请分批。", "The batch is too large; send fewer items.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("submissions"), list):
        raise ApiError(400, "bad_body", "请求体须为 {\"submissions\": [...]}。",
                       "The body must be {\"submissions\": [...]}.")
    items = body["submissions"]
    if len(items) > current_app.config["MAX_BATCH_ITEMS"]:
        raise ApiError(413, "too_many_items",
                       f"一批最多 {current_app.config['MAX_BATCH_ITEMS']} 条。",
                       f"At most {current_app.config['MAX_BATCH_ITEMS']} items per batch.")
    fault = take_fault("fail_before_store")
    if fault:
        raise ApiError(503, "test_fault", "测试故障。", "Injected test fault.")
    results = [None] * len(items)
    prepared, slots, seen, definitions = [], [], {}, {}
    for i, item in enumerate(items):
        p, errors = check_item(current_user, item, definitions)
        if errors:
            results[i] = {"uuid": item.get("uuid") if isinstance(item, dict) else None,
                          "status": "rejected", "errors": errors}
        elif p["uuid"] in seen:  # the same uuid twice in one batch: answer the second like a repeat
            first = prepared[seen[p["uuid"]]]
            same = first["fingerprint"] == p["fingerprint"]
            results[i] = {"uuid": p["uuid"], "status": "duplicate" if same else "rejected",
                          "errors": [] if same else [_err("uuid", "该 uuid 已用于其他内容。",
                                                          "uuid already used with other content")]}
        else:
            seen[p["uuid"]] = len(prepared)
            prepared.append(p)
            slots.append(i)
    if prepared:
        reused = _err("uuid", "该 uuid 已用于其他内容。", "uuid already used with other content")
        for i, r in zip(slots, submissions.ingest(current_user, prepared, reused)):
            results[i] = r
    if take_fault("fail_after_store"):
        raise ApiError(503, "test_fault", "测试故障（已保存）。", "Injected test fault (after storing).")
    return jsonify({"results": results})


@bp.get("/api/v1/submissions")
@login_required
def list_submissions():
    """?household_id=ID (in scope), ?since=SEQ (the caller's own, paged), or ?incomplete=1."""
    household_id = request.args.get("household_id")
    if household_id:
        return jsonify({"submissions": submissions.submissions_for_household(current_user, household_id)})
    if request.args.get("incomplete") == "1":
        return jsonify({"submissions": submissions.incomplete_submissions(current_user)})
    if "since" in request.args:
        since = int_arg("since", 0, 0, 2**62)
        limit = int_arg("limit", 200, 1, 1000)
        page, nxt = submissions.own_submissions_since(current_user, since, limit)
        return jsonify({"submissions": page, "next": nxt})
    raise ApiError(400, "bad_parameter", "需要 household_id、since 或 incomplete 参数。",
                   "Give household_id, since or incomplete.")


@bp.get("/api/v1/submissions/<sub_uuid>")
@login_required
def get_submission(sub_uuid):
    doc = submissions.get_submission_for_user(current_user, sub_uuid)
    if doc is None:
        raise ApiError(404, "not_found", "找不到该记录。", "No such submission.")
    return jsonify(submissions.public_submission(doc))


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
        raise ApiError(400, "bad_name", "附件名称不合法。", "Bad attachment name.")
    doc = submissions.get_submission_for_user(current_user, sub_uuid)
    # Only the cadre who made it may add files to it; others get the same 404 as for nothing there.
    if doc is None or (doc["cadre_id"] != current_user.id and not current_user.is_admin):
        raise ApiError(404, "not_found", "找不到该记录。", "No such submission.")
    declared = next((a for a in doc["attachments"] if a["name"] == name), None)
    if declared is None:
        raise ApiError(404, "not_declared", "该记录没有声明这个附件。", "The submission declares no such attachment.")
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", "附件太大。", "The attachment is too large.")
    data = request.get_data(cache=False)
    if len(data) > limit:
        raise ApiError(413, "too_large", "附件太大。", "The attachment is too large.")
    sent_sum = (request.headers.get("X-Content-SHA256") or "").lower()
    actual = hashlib.sha256(data).hexdigest()
    if sent_sum != actual:
        raise ApiError(400, "checksum_mismatch", "附件校验失败，请重新上传。",
                       "The checksum does not match the bytes; upload again.")
    if actual != declared["sha256"] or len(data) != declared["size"]:
        raise ApiError(409, "not_as_declared", "附件与提交时声明的不一致。",
                       "The attachment differs from what the submission declared.")
    if sniff_type(data) != declared["type"]:
        raise ApiError(415, "bad_type", "附件内容不是声明的图片类型。",
                       "The attachment's content is not the declared image type.")
    if declared.get("received"):
        return jsonify({"status": "duplicate", "name": name})
    complete = submissions.store_attachment(current_app.config["DATA_DIR"], doc, name, data)
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
        raise ApiError(404, "not_found", "找不到。", "Not found.")
    body = request.get_json(silent=True) or {}
    with _faults_lock:
        for k in _faults:
            v = body.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000:
                _faults[k] = v
        return jsonify(dict(_faults))
