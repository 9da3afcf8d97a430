"""OpenRosa 1.0 for ODK Collect and Enketo: the documents they read (forms list, manifest, the
household list as CSV media, responses) and the one way a submission they make is taken in.

A submission is an XForm instance (multipart `xml_submission_file`) plus its files. It is read
safely (no DTD, no entities, no network, bounded), turned into the same item the phone app pushes
({uuid, form, form_version, household_id, created_at, answers, attachments}) and handed to
`records.submissions.receive`: the same validation, effects, review state, dedupe and audit as the
JSON API. Its files are then stored through `records.attachments`, as the phone uploads them.
"""

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import time
import zlib

from lxml import etree

from server.core import images
from server.core.clock import now_iso, sane_phone_time
from server.core.files import write_atomic
from server.core.problems import Problem
from server.forms import formdefs, xform
from server.forms.xform import node, to_xml
from server.records import attachments, households, submissions, villages

MAX_XML_BYTES = 1024 * 1024      # an instance of the largest form is ~30 KB
MAX_ELEMENTS = 50_000
MAX_FILES = attachments.MAX_ATTACHMENTS
XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
JR_NS = "http://openrosa.org/javarosa"
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_INTEGER = re.compile(r"^\s*-?\d{1,16}\s*$")
_ROOT_EXTRAS = {"meta", xform.HOUSEHOLD_FIELD, "prefill_note"}


# ---- a device's settings -------------------------------------------------------------------------


def base_url(root, token):
    """A device's OpenRosa base URL: Collect appends formList and submission to it."""
    return f"{root.rstrip('/')}/openrosa/key/{token}"


def collect_settings(url):
    """What Collect's "Configure with QR code" reads: its settings JSON, zlib-compressed and
    base64-encoded (docs.getodk.org, collect-import-export)."""
    text = json.dumps({"general": {"server_url": url}, "admin": {}}, separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode("utf-8"))).decode("ascii")


# ---- documents Collect reads -------------------------------------------------------------------


def form_list(entries):
    """The OpenRosa xforms list: entries [{"id", "name", "version", "hash", "download", "manifest"}]."""
    forms = [node("xform", children=[
        node("formID", text=e["id"]), node("name", text=e["name"]), node("version", text=e["version"]),
        node("hash", text=e["hash"]), node("downloadUrl", text=e["download"]),
        node("manifestUrl", text=e["manifest"])]) for e in entries]
    return to_xml(node("xforms", {"xmlns": XFORMS_LIST_NS}, forms))


def manifest(media):
    """The manifest of a form: media [{"filename", "hash", "download"}]."""
    files = [node("mediaFile", children=[node("filename", text=m["filename"]), node("hash", text=m["hash"]),
                                         node("downloadUrl", text=m["download"])]) for m in media]
    return to_xml(node("manifest", {"xmlns": MANIFEST_NS}, files))


def response(message, nature=None):
    """An OpenRosaResponse carrying one message (nature "submit_success" on success)."""
    attrs = {"nature": nature} if nature else {}
    return to_xml(node("OpenRosaResponse", {"xmlns": RESPONSE_NS}, [node("message", attrs, text=message)]))


def households_csv(user, db=None):
    """The households of the user's villages as Collect's CSV media: name (the id), label (head,
    village, number), so the household is picked from a list offline."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "label"])
    names = {v["id"]: v.get("name") or v["id"] for v in villages.in_scope(user, db)}
    for vid in villages.ids_in_scope(user, db):
        rows = households.scan(vid, lambda d: (d["id"], d.get("head_name") or "", d.get("group") or ""),
                               db=db)
        for hid, head, group in sorted(rows):
            number = hid.rsplit("-", 1)[-1]
            place = " ".join(p for p in (names.get(vid, vid), group) if p)
            writer.writerow([hid, f"{head}（{place} {number}）"])
    return out.getvalue().encode("utf-8")


# ---- reading an instance -----------------------------------------------------------------------


def parse_instance(data):
    """The instance's root element, read safely; a Problem for anything else: too large, not
    UTF-8, a DOCTYPE or entity declaration (entity bombs, external entities), not well formed."""
    if len(data) > MAX_XML_BYTES:
        raise Problem("too_large", limit=f"{MAX_XML_BYTES // 1024} KB")
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise Problem("openrosa_doctype")
    declared = _DECLARED_ENCODING.match(data)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        raise Problem("openrosa_not_xml", reason="encoding must be UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem("openrosa_not_xml", reason="not UTF-8") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise Problem("openrosa_not_xml", reason=str(e)[:200]) from None
    if root.getroottree().docinfo.doctype:
        raise Problem("openrosa_doctype")
    count = 0
    for _ in root.iter():
        count += 1
        if count > MAX_ELEMENTS:
            raise Problem("too_large", limit=f"{MAX_ELEMENTS} elements")
    return root


def _local(el):
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def _children(el):
    """{local name: [elements]} of an element's children, in order."""
    out = {}
    for child in el:
        name = _local(child)
        if name is not None:
            out.setdefault(name, []).append(child)
    return out


def _text(el):
    text = el.text if el is not None and len(el) == 0 else None
    return text if text is not None and text.strip() != "" else None


def _number(text, integer):
    if integer:
        return int(text) if _INTEGER.match(text) else text
    try:
        value = float(text)
    except ValueError:
        return text
    if value != value or value in (float("inf"), float("-inf")):
        return text
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 and "." not in text else value


def _geopoint(text):
    """ODK's "lat lon altitude accuracy" as {"lat", "lon", "accuracy"}."""
    parts = text.split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return text
    if len(numbers) < 2:
        return text
    point = {"lat": numbers[0], "lon": numbers[1]}
    if len(numbers) >= 4:
        point["accuracy"] = numbers[3]
    return point


def _value(field, el):
    text = _text(el)
    if text is None:
        return None
    kind = field["type"]
    if kind in ("integer", "decimal"):
        return _number(text.strip(), kind == "integer")
    if kind == "select_multiple":
        return text.split()
    if kind == "geopoint":
        return _geopoint(text)
    return text


def _collect(el, fields, out):
    """Answers from one element's children: sections opened into `out`, repeats as lists of
    entries. Unknown elements are kept as text answers, so validation names them."""
    found = _children(el) if el is not None else {}
    known = set()
    for field in fields:
        name, kind = field["name"], field["type"]
        known.add(name)
        elements = found.get(name, [])
        if kind == "group":
            _collect(elements[0] if elements else None, field["fields"], out)
        elif kind == "repeat":
            entries = []
            for entry in elements:
                if entry.get(f"{{{JR_NS}}}template") is not None:
                    continue
                answers = {}
                _collect(entry, field["fields"], answers)
                entries.append(answers)
            if entries:
                out[name] = entries
        elif kind != "note" and elements:
            value = _value(field, elements[0])
            if value is not None:
                out[name] = value
    return found, known


def read_item(root, registry):
    """(definition, item without attachments) from an instance; a Problem when its form or
    version is unknown."""
    form_id, raw_version = root.get("id"), root.get("version")
    version = int(raw_version) if isinstance(raw_version, str) and raw_version.isdigit() \
        and len(raw_version) < 10 else None
    definition = registry.get(form_id, version) if isinstance(form_id, str) and version else None
    if definition is None:
        raise Problem("openrosa_unknown_form", form=str(form_id)[:64], version=str(raw_version)[:20])
    answers = {}
    found, known = _collect(root, definition["fields"], answers)
    for name in sorted(set(found) - known - _ROOT_EXTRAS):
        answers[name[:100]] = _text(found[name][0]) or ""
    meta = _children(found["meta"][0]) if found.get("meta") else {}
    instance_id = _text(meta["instanceID"][0]) if meta.get("instanceID") else None
    sub_uuid = instance_id[5:] if instance_id and instance_id.startswith("uuid:") else instance_id
    created_at = None
    for key in ("timeEnd", "timeStart"):
        stamp = _text(meta[key][0]) if meta.get(key) else None
        if stamp and sane_phone_time(stamp):
            created_at = stamp.strip()
            break
    household = _text(found[xform.HOUSEHOLD_FIELD][0]) if found.get(xform.HOUSEHOLD_FIELD) else None
    item = {"uuid": (sub_uuid or "").strip().lower(), "form": definition["id"],
            "form_version": definition["version"], "household_id": household,
            "created_at": created_at, "answers": answers}
    return definition, item


# ---- taking a submission in --------------------------------------------------------------------


def _checked_files(files, max_bytes, max_pixels):
    """{name: {"data", "sha256", "size", "type"}} of the files sent beside the instance, each a
    JPEG or PNG within the limits (the same rules as the phone's uploads), read once."""
    out = {}
    if len(files) > MAX_FILES:
        raise Problem("too_many_items", limit=MAX_FILES)
    for name, data in files:
        if not attachments.is_safe_name(name):
            raise Problem("bad_attachment_name")
        if len(data) > max_bytes:
            raise Problem("too_large", limit=f"{max_bytes // (1024 * 1024)} MB")
        kind = attachments.sniff_type(data)
        if kind is None:
            raise Problem("attachment_bad_type")
        try:
            images.check_upload(data, kind, max_pixels)
        except images.ImageRefused as e:
            if e.reason == "too_large":
                raise Problem("image_too_large", limit=f"{max_pixels / 1e6:g}")
            raise Problem("image_unreadable")
        out[name] = {"data": data, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                     "type": kind}
    return out


def _named(definition, item, files, settings):
    """(the files the relevant answers name, validation errors). A file sent that no answer names
    is refused (files of answers that are not relevant are simply not kept)."""
    raw_names = set(formdefs.attachment_names(definition, item["answers"]))
    for name in files:
        if name not in raw_names:
            raise Problem("openrosa_undeclared", name=name[:100])
    clean, errors = formdefs.validate_answers(definition, item["answers"], settings=settings)
    return formdefs.attachment_names(definition, clean), errors


def _described(name, data):
    return {"data": data, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "type": attachments.sniff_type(data)}


# A submission larger than X-OpenRosa-Accept-Content-Length comes in parts: Collect posts the
# instance again with the next files, and "*isIncomplete*: yes" on all but the last. The files of
# the parts before the last wait (fsynced) in <files>/openrosa-parts/<user>/<uuid>/ until the
# whole submission is there; then it is taken in at once and the folder goes.
PARTS = "openrosa-parts"
PARTS_KEEP_DAYS = 30


def _parts_dir(files_dir, user_id, sub_uuid):
    """The folder of one submission's parts; the user's folder is named by a hash of the id (a
    username may be "..")."""
    owner = hashlib.sha256(user_id.encode()).hexdigest()[:20]
    return os.path.join(files_dir, PARTS, owner, sub_uuid)


def _staged(folder, names):
    out = {}
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = _described(name, f.read())
    return out


def _stage(folder, files):
    for name, f in files.items():
        write_atomic(os.path.join(folder, name), f["data"])
    _prune(os.path.dirname(folder))


def _prune(user_folder):
    """Parts of submissions never finished, untouched for PARTS_KEEP_DAYS, are dropped."""
    limit = time.time() - PARTS_KEEP_DAYS * 86400
    for entry in os.scandir(user_folder):
        if entry.is_dir() and entry.stat().st_mtime < limit:
            shutil.rmtree(entry.path, ignore_errors=True)


def _detail(errors):
    shown = errors[:10]
    zh = "；".join(f"{e.get('field') or ''}：{e.get('zh', '')}" for e in shown)
    en = "; ".join(f"{e.get('field') or ''}: {e.get('en', '')}" for e in shown)
    return zh, en


def _same_but_time(existing, item):
    """A resent instance that carried no usable time got `now` for created_at: it is the same
    submission when everything else matches what is stored."""
    if existing is None or item.get("created_at_was_now") is not True:
        return False
    again = {k: v for k, v in item.items() if k != "created_at_was_now"}
    again["created_at"] = existing.get("created_at")
    return submissions.fingerprint(again) == existing.get("fingerprint")


def submit(user, xml_data, files, registry, settings, *, max_attachment_bytes, max_pixels, files_dir,
           incomplete=False):
    """Take one Collect submission (or one part of one, `incomplete`) in: (HTTP status 201
    created | 202 duplicate, zh, en). Every refusal is a Problem raised before anything is stored."""
    root = parse_instance(xml_data)
    definition, item = read_item(root, registry)
    checked = _checked_files(files, max_attachment_bytes, max_pixels)
    needed, errors = _named(definition, item, checked, settings)
    sub_uuid = submissions.canonical_uuid(item["uuid"])
    parts = _parts_dir(files_dir, user.id, sub_uuid) if sub_uuid else None
    have = dict(checked)
    if parts and os.path.isdir(parts):
        have.update(_staged(parts, [n for n in needed if n not in have]))
    missing = [n for n in needed if n not in have]
    if missing:
        if not incomplete or parts is None:
            raise Problem("openrosa_missing_file", name=missing[0][:100])
        if submissions.get_for(user, sub_uuid) is not None:
            return 202, "已收到过这份记录。", "This submission was received before."
        if errors:
            zh, en = _detail(errors)
            raise Problem("openrosa_invalid", extra={"errors": errors}, detail_zh=zh, detail_en=en)
        _stage(parts, checked)
        return 201, "已收到这一部分，等待其余附件。", "This part was received; the other files are awaited."
    checked = {n: have[n] for n in needed}
    item["attachments"] = [{"name": n, "sha256": checked[n]["sha256"], "size": checked[n]["size"],
                            "type": checked[n]["type"]} for n in needed]
    if item["created_at"] is None:
        item["created_at"] = now_iso()
        item["created_at_was_now"] = True
    sent = {k: v for k, v in item.items() if k != "created_at_was_now"}
    result, = submissions.receive(user, [sent], registry, settings,
                                  max_attachment_bytes=max_attachment_bytes)
    status = result["status"]
    if status == "rejected":
        errors = result.get("errors") or []
        if any(e.get("field") == "uuid" and e.get("en") == submissions.uuid_reused()["en"] for e in errors):
            existing = submissions.get_for(user, item["uuid"])
            if not _same_but_time(existing, item):
                raise Problem("openrosa_conflict")
            status = "duplicate"
        else:
            zh, en = _detail(errors)
            raise Problem("openrosa_invalid", extra={"errors": errors}, detail_zh=zh, detail_en=en)
    doc = submissions.get_for(user, item["uuid"])
    for name, f in checked.items():
        declared = next((a for a in (doc or {}).get("attachments", []) if a["name"] == name), None)
        if declared is None or declared.get("received"):
            continue
        attachments.accept(user, doc, name, lambda f=f: f["data"], f["sha256"], content_length=f["size"],
                           files_dir=files_dir, max_bytes=max_attachment_bytes, max_pixels=max_pixels)
    if parts and os.path.isdir(parts):
        shutil.rmtree(parts, ignore_errors=True)
    if status == "created":
        return 201, "已收到。", "Received."
    return 202, "已收到过这份记录。", "This submission was received before."

