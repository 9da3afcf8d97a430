"""Admin pages for forms: every form and version (each downloadable as XLSForm), checking an
uploaded YAML file or XLSForm workbook (with the CSV files its selects name), a phone-sized
preview, and publishing it without a restart (the rules are in form_publish.py)."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from server.services import form_publish
from server.forms import formdefs, xlsform
from server.web.auth import role_required
from server.core.i18n import tr
from server.web.parse import parse_int
from server.records import audit
from server.web.admin import bp


MAX_ATTACHMENTS = 20


def _upload_bytes():
    """The uploaded file (or pasted text) as bytes, read no further than the limit allows."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        workbook = upload.filename.lower().endswith((".xlsx", ".xlsm", ".xls"))
        return upload.read((xlsform.MAX_BYTES if workbook else form_publish.MAX_FORM_BYTES) + 1)
    text = request.form.get("yaml", "")
    return text.encode("utf-8") if text else None


def _upload_name():
    upload = request.files.get("file")
    return upload.filename if upload is not None and upload.filename else None


def _attachments():
    """{file name: bytes} of the CSV files uploaded with a workbook (select_one_from_file)."""
    out = {}
    for upload in request.files.getlist("attachments")[:MAX_ATTACHMENTS]:
        if upload and upload.filename:
            name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
            out[name] = upload.read(xlsform.MAX_CSV_BYTES + 1)
    return out


def _overview():
    registry = formdefs.registry()
    published = {}
    for e in audit.entries(action="form_publish"):
        published.setdefault((e["target"], (e.get("details") or {}).get("version")), e)
    forms = []
    for form_id in registry.ids():
        current = registry.get(form_id)
        versions = [{"version": v, "definition": registry.get(form_id, v), "sha256": registry.sha256(form_id, v),
                     "questions": len(formdefs.answer_fields(registry.get(form_id, v))),
                     "published": published.get((form_id, v))}
                    for v in reversed(registry.versions(form_id))]
        forms.append({"id": form_id, "current": current, "versions": versions})
    return forms


def _page(checked):
    return render_template("admin/forms.html", forms=_overview(), checked=checked,
                           limit_kb=form_publish.MAX_FORM_BYTES // 1024, xlsform_mb=xlsform.MAX_BYTES >> 20)


@bp.get("/forms")
@role_required("admin")
def forms():
    return _page(None)


@bp.post("/forms/check")
@role_required("admin")
def forms_check():
    data = _upload_bytes()
    if data is None:
        checked = {"ok": False, "problems": [(None, tr("请选择一个 YAML 或 XLSForm 文件。",
                                                         "Choose a YAML or XLSForm file."))]}
    else:
        checked = form_publish.check(current_app._get_current_object(), data, _upload_name(), _attachments())
    return _page(checked), (200 if checked["ok"] else 400)


@bp.post("/forms/publish")
@role_required("admin")
def forms_publish():
    data = _upload_bytes()
    if data is None:
        checked = {"ok": False, "problems": [(None, tr("请选择一个 YAML 或 XLSForm 文件。",
                                                         "Choose a YAML or XLSForm file."))]}
    else:
        checked, _registry = form_publish.publish(current_app._get_current_object(), data,
                                                  actor=current_user.id, filename=_upload_name(),
                                                  attachments=_attachments())
    if not checked["ok"]:
        return _page(checked), 400
    form_id, version = checked["form_id"], checked["version"]
    flash(tr(f"已发布表单 {form_id} 第 {version} 版；手机下次同步时更新。",
             f"Form {form_id} version {version} published; phones pick it up at their next sync."))
    return redirect(url_for("admin.forms"))


@bp.get("/forms/<form_id>/<version>")
@role_required("admin")
def form_preview(form_id, version):
    number = parse_int(version, 1, 10**6)
    definition = formdefs.registry().get(form_id, number) if number else None
    if definition is None:
        abort(404)
    return render_template("admin/form_preview_page.html", definition=definition)
