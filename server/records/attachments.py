"""Attachments (owner): the photos and signatures a submission declares, and the files that arrive for
them. One rule for what is acceptable — a safe name, a sha256, a size under the limit, JPEG or PNG —
used when a submission declares its files and again, with the bytes in hand, when each one arrives
(the file must be exactly what was declared, its type read from its content, its pixels within
budget)."""

import hashlib
import os
import re

from server.core import images
from server.core.files import write_atomic
from server.core.problems import Problem, field_error
from server.forms.formdefs import is_safe_attachment_name as is_safe_name
from server.store import get_store

SUBMISSIONS = "submissions"
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
ALLOWED_TYPES = ("image/jpeg", "image/png")
MAX_ATTACHMENTS = 20


def _err(field, zh, en):
    return field_error(field, zh, en)


def check_declared(raw, limit):
    """The attachments a submission item declares: (the list as stored, errors)."""
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        return [], [_err("attachments", f"attachments 须为列表（最多 {MAX_ATTACHMENTS} 个）。",
                         f"attachments must be a list (at most {MAX_ATTACHMENTS}).")]
    out, errors, seen = [], [], set()
    for a in raw:
        if not isinstance(a, dict) or not is_safe_name(a.get("name")) \
                or set(a) - {"name", "sha256", "size", "type"}:
            errors.append(_err("attachments", "附件名称或属性不合法。", "Bad attachment name or properties."))
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


def sniff_type(data):
    """The type the bytes are, whatever anyone said they are."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def accept(user, doc, name, read_body, sent_sha256, *, content_length, files_dir, max_bytes, max_pixels):
    """A file arriving for `doc` (a submission in the caller's scope): stored when it is exactly the
    declared one; {"status": "stored", "complete"} or {"status": "duplicate"}; a Problem otherwise.
    Only the cadre who made the submission (or an admin) may add its files; others get the same
    404 as for nothing there. The body is read (`read_body()`) only once the file is known to be
    declared and its announced length is within the limit."""
    if not is_safe_name(name):
        raise Problem("bad_attachment_name")
    if doc is None or (doc["cadre_id"] != user.id and not user.is_admin):
        raise Problem("submission_not_found")
    declared = next((a for a in doc["attachments"] if a["name"] == name), None)
    if declared is None:
        raise Problem("attachment_not_declared")
    too_large = Problem("too_large", limit=f"{max_bytes // (1024 * 1024)} MB")
    if content_length is not None and content_length > max_bytes:
        raise too_large
    data = read_body()
    if len(data) > max_bytes:
        raise too_large
    actual = hashlib.sha256(data).hexdigest()
    if (sent_sha256 or "").lower() != actual:
        raise Problem("checksum_mismatch")
    if actual != declared["sha256"] or len(data) != declared["size"]:
        raise Problem("attachment_not_as_declared")
    if sniff_type(data) != declared["type"]:
        raise Problem("attachment_bad_type")
    # The header only, then a bounded check: a 657 KB PNG may claim 13000×13000 pixels.
    try:
        images.check_upload(data, declared["type"], max_pixels)
    except images.ImageRefused as e:
        if e.reason == "too_large":
            raise Problem("image_too_large", limit=f"{max_pixels / 1e6:g}")
        if e.reason == "too_complex":
            raise Problem("image_too_complex")
        raise Problem("image_unreadable")
    if declared.get("received"):
        return {"status": "duplicate"}
    return {"status": "stored", "complete": store(files_dir, doc, name, data)}


def path(files_dir, sub_uuid, name):
    return os.path.join(files_dir, "attachments", sub_uuid, name)


def store(files_dir, doc, name, data, db=None):
    """The file first (fsynced, renamed into place), then the record that it arrived: a crash in
    between leaves a file the phone will simply upload again. Returns whether all have arrived."""
    write_atomic(path(files_dir, doc["uuid"], name), data)

    def mark(tx):
        fresh = tx.get(doc["village_id"], SUBMISSIONS, doc["uuid"])
        for a in fresh["attachments"]:
            if a["name"] == name:
                a["received"] = True
        tx.put(doc["village_id"], SUBMISSIONS, fresh)
        return all(a.get("received") for a in fresh["attachments"])

    return (db or get_store()).write(mark)
