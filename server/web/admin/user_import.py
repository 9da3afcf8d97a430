"""Accounts in bulk on /admin/users/import: the online twin of `user import FILE`. Upload, a
preview with every error, then confirm; the one-time passwords are shown once and can be printed
as login slips. The rules are services/user_import.py's."""

import base64
import binascii

from flask import Response, abort, current_app, render_template, request
from flask_login import current_user

from server.core.problems import Problem
from server.printing import slips
from server.records import users as user_records
from server.services import user_import
from server.web.admin import bp
from server.web.admin.users import NO_STORE, refuse
from server.web.auth import role_required

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _page(report=None, data=None, filename="", status=200):
    carried = base64.b64encode(data).decode() if data is not None else ""
    return render_template("admin/users_import.html", report=report, data=carried, filename=filename,
                           max_kb=user_import.MAX_BYTES >> 10), status


@bp.get("/users/import")
@role_required(*user_records.MANAGERS)
def users_import():
    return _page()


@bp.get("/users/import-template.xlsx")
@role_required(*user_records.MANAGERS)
def users_import_template():
    return Response(user_import.template_xlsx(), mimetype=XLSX, headers={
        "Content-Disposition": "attachment; filename=users-template.xlsx"})


def _upload():
    """(filename, bytes) from the upload (preview) or the carried copy (confirm)."""
    if request.form.get("step") == "confirm":
        try:
            data = base64.b64decode(request.form.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        return request.form.get("filename", "")[:200], data
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return "", b""
    return upload.filename[:200], upload.read(user_import.MAX_BYTES + 1)


@bp.post("/users/import")
@role_required(*user_records.MANAGERS)
def users_import_post():
    filename, data = _upload()
    confirm = request.form.get("step") == "confirm"
    report = user_import.run(filename, data, actor=current_user.id, actor_doc=current_user.doc,
                             confirm=confirm)
    if report["forbidden"]:
        return _page(report, status=403)
    if report["errors"]:
        return _page(report, status=400)
    if confirm:
        return render_template("admin/users_import.html", report=report, done=True, data="",
                               filename=filename, created=report["created"]), 200, NO_STORE
    return _page(report, data=data, filename=filename)


@bp.post("/users/slips.pdf")
@role_required(*user_records.MANAGERS)
def user_slips():
    """The login slips of accounts just given one-time passwords (the page posts them back: they
    are kept nowhere). Only accounts the actor manages."""
    names = request.form.getlist("username")[:slips.MAX_SLIPS]
    secrets_ = request.form.getlist("password")[:slips.MAX_SLIPS]
    if not names or len(names) != len(secrets_):
        raise Problem("bad_parameter", name="username", reason_zh="缺少账号", reason_en="no accounts given")
    rows = []
    for name, password in zip(names, secrets_):
        doc = user_records.get(name)
        if doc is None:
            abort(404)
        if not user_records.may_manage(current_user.doc, doc):
            refuse("user_slips", name, "该账号不是你负责的村的驻村干部",
                   "this account is not a cadre of your villages only")
        rows.append({"username": doc["id"], "display_name": doc.get("display_name") or doc["id"],
                     "password": password[:64]})
    pdf = slips.render_slips_pdf(rows, slips.app_url(current_app, request.host_url))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": "attachment; filename=login-slips.pdf", "Cache-Control": "no-store"})
