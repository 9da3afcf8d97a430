"""The land ledger's web side: confirmation links (made by a cadre, used without an account), the
ledger PDFs (公示表 and the household's confirmation sheet). Thin views over the owners
(records/ledger_links.py, records/households.py) and the printing module (printing/ledger.py)."""

import base64
import binascii
import hashlib
import io
import os
import threading
import time

from flask import Blueprint, current_app, jsonify, make_response, render_template, request, send_from_directory
from flask_login import current_user, login_required

from server.core.files import write_atomic
from server.core.problems import Problem
from server.records import households, ledger_links, villages
from server.web.parse import json_body, parse_int

bp = Blueprint("ledger", __name__)
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "remote")
MAX_SIGNATURE_BYTES = 200 * 1024
MAX_SIGNATURE_PIXELS = 4_000_000
CONTRACT_TEXT = ("本户对上列承包地块的名称、面积和四至予以确认。如有异议，请选择“有异议”并写明。"
                 "I confirm the names, areas and four boundaries of the plots above; if not, choose "
                 "“Object” and say why.")


# ---- making and revoking links (cadres and supervisors in scope) --------------------------------


def _household_in_scope(household_id):
    if current_user.role not in ("cadre", "supervisor", "admin"):
        raise Problem("forbidden")
    doc = households.get_for(current_user, household_id)
    if doc is None:
        raise Problem("household_not_found")
    return doc


@bp.post("/api/v1/households/<household_id>/ledger/link")
@login_required
def make_link(household_id):
    _household_in_scope(household_id)
    body = json_body(1024, shape='{"days": n}') if request.content_length else {}
    days = body.get("days", ledger_links.DEFAULT_DAYS) if isinstance(body, dict) else None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 60:
        raise Problem("bad_parameter", name="days", reason_zh="须为 1–60 的整数", reason_en="must be 1–60")
    token, doc = ledger_links.create(current_user.id, household_id, days=days)
    url = request.host_url.rstrip("/") + f"/c/{household_id}/{token}"
    return jsonify({"url": url, "code": doc["code"], "expires_at": doc["expires_at"]})


@bp.delete("/api/v1/households/<household_id>/ledger/link")
@login_required
def revoke_links(household_id):
    _household_in_scope(household_id)
    return jsonify({"revoked": ledger_links.revoke(current_user.id, household_id)})


@bp.delete("/c/<household_id>/<token>", endpoint="remote_revoke")
@login_required
def revoke_link(household_id, token):
    _household_in_scope(household_id)
    if ledger_links.find(household_id, token) is None:
        raise Problem("not_found")
    return jsonify({"revoked": ledger_links.revoke(current_user.id, household_id, token)})


# ---- the page a person far away opens (no account) -------------------------------------------------


class RateLimit:
    """At most `limit` link requests per address in `window` seconds; memory bounded."""

    def __init__(self, limit=30, window=600.0, max_addresses=10000):
        self.limit, self.window, self.max_addresses = limit, window, max_addresses
        self._hits = {}
        self._lock = threading.Lock()

    def allow(self, address, clock=time.monotonic):
        t = clock()
        with self._lock:
            hits = [h for h in self._hits.get(address, ()) if t - h < self.window]
            if len(hits) >= self.limit:
                self._hits[address] = hits
                return False
            if len(self._hits) >= self.max_addresses and address not in self._hits:
                self._hits.clear()
            hits.append(t)
            self._hits[address] = hits
            return True


def _limiter():
    app = current_app._get_current_object()
    found = app.extensions.get("jiedui_link_limit")
    if found is None:
        found = app.extensions.setdefault("jiedui_link_limit", RateLimit(app.config.get("LEDGER_LINK_RATE", 30)))
    return found


def _gone(status):
    resp = make_response(render_template("ledger_gone.html"), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _small(resp):
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # the token never leaves in a Referer
    return resp


def _fmt_area(value):
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _remote_page(doc, link, error=None, status=200):
    plots = [{"name": p.get("name", ""), "code": p.get("code", ""), "area": _fmt_area(p.get("area_mu")),
              "east": p.get("east", ""), "west": p.get("west", ""), "south": p.get("south", ""),
              "north": p.get("north", ""), "contract_no": p.get("contract_no", "")}
             for p in doc.get("plots") or []]
    return _small(make_response(render_template("ledger_remote.html", head=doc.get("head_name", ""),
                                                code=link["code"], plots=plots, error=error,
                                                contract_text=CONTRACT_TEXT), status))


def _open_link(household_id, token):
    """(household, link) for an open link, else the plain page's reply (404 unknown, 410 spent)."""
    if not _limiter().allow(request.remote_addr or "?"):
        resp = _gone(429)
        resp.headers["Retry-After"] = "600"
        return None, resp
    link = ledger_links.find(household_id, token)
    if link is None:
        return None, _gone(404)
    if ledger_links.state(link) != "open":
        return None, _gone(410)
    doc = households.get(household_id)
    if doc is None:
        return None, _gone(404)
    return (doc, link), None


@bp.get("/c/<household_id>/<token>")
def remote_page(household_id, token):
    found, refusal = _open_link(household_id, token)
    if refusal is not None:
        return refusal
    ledger_links.note_opened(household_id, token, request.remote_addr)
    return _remote_page(*found)


def _signature(data_url):
    """The PNG bytes of a signature data URL, '' for none, None when it is not a small PNG."""
    if not data_url:
        return b""
    prefix = "data:image/png;base64,"
    if not isinstance(data_url, str) or not data_url.startswith(prefix) \
            or len(data_url) > len(prefix) + MAX_SIGNATURE_BYTES * 4 // 3 + 4:
        return None
    try:
        data = base64.b64decode(data_url[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    try:
        from PIL import Image
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG" or im.width * im.height > MAX_SIGNATURE_PIXELS:
                return None
    except Exception:
        return None
    return data


def signature_path(files_dir, household_id, sha):
    vid = households.village_of(household_id) or "_"
    return os.path.join(files_dir, "ledger-signatures", vid, f"{sha}.png")


@bp.post("/c/<household_id>/<token>", endpoint="remote_submit")
def remote_submit(household_id, token):
    found, refusal = _open_link(household_id, token)
    if refusal is not None:
        return refusal
    doc, link = found
    decision = request.form.get("decision", "")
    name = (request.form.get("name") or "").strip()
    objection = (request.form.get("objection") or "").strip()
    if decision not in ("confirm", "object"):
        return _remote_page(doc, link, "请选择确认或有异议。Choose confirm or object.", 400)
    if not name or len(name) > 50 or any(ord(c) < 32 for c in name):
        return _remote_page(doc, link, "请填写姓名（最多 50 字）。Write your name (at most 50 characters).", 400)
    if decision == "object" and not objection:
        return _remote_page(doc, link, "请写明异议内容。Say what is wrong.", 400)
    if len(objection) > 500 or any(ord(c) < 32 and c not in "\r\n" for c in objection):
        return _remote_page(doc, link, "异议内容过长或含有控制字符。The objection is too long.", 400)
    png = _signature(request.form.get("signature"))
    if png is None:
        return _remote_page(doc, link, "签名无法读取，请重写。The signature cannot be read; sign again.", 400)
    sha = None
    if png:
        sha = hashlib.sha256(png).hexdigest()
        write_atomic(signature_path(current_app.config["FILES_DIR"], household_id, sha), png)
    changed, error = ledger_links.use(household_id, token, decision=decision, name=name,
                                      objection=objection.replace("\r", " ").replace("\n", " "),
                                      signature=sha, address=request.remote_addr)
    if error:
        return _gone(404 if error == "not_found" else 410)
    return _small(make_response(render_template("ledger_remote.html", done=decision), 200))


@bp.get("/c/remote.js")
def remote_js():
    resp = send_from_directory(ASSETS, "remote.js", mimetype="text/javascript", max_age=86400)
    return resp


@bp.get("/c/remote.css")
def remote_css():
    return send_from_directory(ASSETS, "remote.css", mimetype="text/css", max_age=86400)


# ---- paper ------------------------------------------------------------------------------------------


def _pdf(data, name):
    resp = make_response(data)
    resp.headers["Content-Type"] = "application/pdf"
    resp.headers["Content-Disposition"] = f'inline; filename="{name}"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _village_in_scope(village_id):
    village = villages.get(village_id) if current_user.can_see_village(village_id) else None
    if village is None:
        raise Problem("village_not_found")
    return village


@bp.get("/households/<household_id>/ledger.pdf")
@login_required
def household_pdf(household_id):
    from server.printing import ledger as paper
    doc = households.get_for(current_user, household_id)
    if doc is None:
        raise Problem("household_not_found")
    village = villages.get(doc["village_id"]) or {"id": doc["village_id"], "name": doc["village_id"]}
    pdf = paper.sheets_pdf(village, [doc], files_dir=current_app.config["FILES_DIR"],
                           mask=not current_user.is_admin, signature_path=signature_path,
                           phone_signatures=phone_signatures(doc["village_id"], {household_id}),
                           printed_by=current_user.display_name)
    return _pdf(pdf, f"ledger-{household_id}.pdf")


def phone_signatures(village_id, household_ids=None):
    """{household id: path} of the signature the head gave on a cadre's phone (the latest current
    land_ledger submission whose signature has arrived): what the sheet prints when no signature
    came from afar. One pass over the village's submissions."""
    from server.records import attachments, submissions
    latest = {}

    def keep(s):
        return (s.get("form") == "land_ledger" and submissions.is_current(s)
                and (household_ids is None or s.get("household_id") in household_ids)
                and any(a.get("name") == (s.get("answers") or {}).get("signature") and a.get("received")
                        for a in s.get("attachments") or []))
    for hid, at, uuid, name in submissions.scan(
            village_id, lambda s: (s["household_id"], s.get("created_at") or "", s["uuid"],
                                   s["answers"]["signature"]), keep):
        if at >= latest.get(hid, ("",))[0]:
            latest[hid] = (at, attachments.path(current_app.config["FILES_DIR"], uuid, name))
    return {hid: path for hid, (_at, path) in latest.items()}


def _village_households(village_id):
    group = (request.args.get("group") or "").strip()[:50] or None
    docs = households.in_village(village_id)
    if group:
        docs = [d for d in docs if d.get("group") == group]
    return group, docs


@bp.get("/villages/<village_id>/ledger-notice.pdf")
@login_required
def notice_pdf(village_id):
    from server.printing import ledger as paper
    village = _village_in_scope(village_id)
    group, docs = _village_households(village_id)
    start = request.args.get("start")
    days = parse_int(request.args.get("days", ""), 1, 60) or village.get("publicity_days") or paper.PUBLICITY_DAYS
    pdf = paper.notice_pdf(village, docs, group=group, start=start if start and len(start) == 10 else None,
                           days=days, printed_by=current_user.display_name)
    return _pdf(pdf, f"ledger-notice-{village_id}.pdf")


@bp.get("/villages/<village_id>/ledger-sheets.pdf")
@login_required
def sheets_pdf(village_id):
    from server.printing import ledger as paper
    village = _village_in_scope(village_id)
    from server.printing import workers_for
    _group, docs = _village_households(village_id)
    pdf = paper.sheets_pdf(village, docs, files_dir=current_app.config["FILES_DIR"],
                           mask=not current_user.is_admin, signature_path=signature_path,
                           phone_signatures=phone_signatures(village_id),
                           printed_by=current_user.display_name,
                           workers=workers_for(current_app._get_current_object()))
    return _pdf(pdf, f"ledger-sheets-{village_id}.pdf")


@bp.post("/households/<household_id>/ledger-link")
@login_required
def make_link_page(household_id):
    """The household page's button: a link to send by WeChat or SMS, shown once."""
    doc = _household_in_scope(household_id)
    token, link = ledger_links.create(current_user.id, household_id)
    url = request.host_url.rstrip("/") + f"/c/{household_id}/{token}"
    return render_template("households/ledger_link.html", h=doc, url=url, code=link["code"],
                           expires_at=link["expires_at"])
