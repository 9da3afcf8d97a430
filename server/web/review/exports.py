"""Exports (contract in DESIGN): submissions of a form as XLSX or as a ZIP of CSVs, the household
ledger, and the attachments ZIP, each in the caller's scope. The book is written row by row to a
temporary file (already unlinked, so nothing is left behind) and then streamed from it: memory stays
flat however many rows there are. The attachments ZIP is made as it is sent, with no copy at all.

Every export runs in the export lane (server/web/lanes.py): a few at once in all, one or two per
user, 503 `busy` with Retry-After past that, so exports never hold every request thread."""

import tempfile
import zipfile

from flask import Response, current_app, request, send_file
from flask_login import current_user, login_required

from server.forms import formdefs
from server.services import present
from server.core.clock import today_iso
from server.web.parse import text_arg
from server.core.problems import Problem
from server.core.i18n import tr
from server.records import reviews, villages
from server.web import lanes
from server.web.review import bp, filters
from server.services import sheets
from server.services.tabular import CsvBook, XlsxBook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _send(write, mimetype, download_name):
    out = tempfile.TemporaryFile(prefix="jiedui-export-")
    try:
        lanes.run("export", current_user.id, lambda: write(out))
        out.seek(0)
    except BaseException:
        out.close()
        raise
    resp = send_file(out, mimetype=mimetype, as_attachment=True, download_name=download_name,
                     max_age=0)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _name(stem, filters_, ext):
    parts = [stem] + [p for p in (filters_.village, filters_.state) if p]
    return f"{'-'.join(parts)}-{today_iso()}.{ext}"


@bp.get("/exports/submissions.xlsx")
@login_required
def submissions_xlsx():
    wanted = filters.parse(form_required=True)
    registry = formdefs.registry()

    def write(out):
        book = XlsxBook(about=True)
        count = sheets.write_submissions(book, current_user, wanted, registry)
        book.about(_about(wanted, registry, count))
        book.save(out)
    return _send(write, XLSX, _name(wanted.form, wanted, "xlsx"))


def _about(wanted, registry, count, bundled=False):
    return sheets.about_rows(
        tr("走访等表单记录", "Submissions of a form"), wanted, current_user, count,
        form_title=f"{present.form_title(registry.get(wanted.form), wanted.form)}（{wanted.form}）",
        bundled=bundled)


@bp.get("/exports/submissions-attachments.zip")
@login_required
def submissions_with_attachments():
    """The XLSX and the attachments in one ZIP: submissions.xlsx at the top, the files beside it
    as <household>/<date>-<uuid>-<name>, and every photo or signature cell a relative link to its
    file (it opens once the ZIP is unpacked)."""
    wanted = filters.parse(form_required=True)
    registry = formdefs.registry()
    files_dir = current_app.config["FILES_DIR"]

    def write(out):
        book = XlsxBook(about=True)
        with tempfile.TemporaryFile(prefix="jiedui-bundle-") as xlsx:
            count = sheets.write_submissions(book, current_user, wanted, registry, files_dir=files_dir)
            book.about(_about(wanted, registry, count, bundled=True))
            book.save(xlsx)
            xlsx.seek(0)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                with zf.open("submissions.xlsx", "w", force_zip64=True) as dest:
                    while chunk := xlsx.read(1 << 20):
                        dest.write(chunk)
                sheets.add_attachments(zf, current_user, wanted, files_dir)
    return _send(write, "application/zip", _name(f"{wanted.form}-with-attachments", wanted, "zip"))


@bp.get("/exports/submissions.zip")
@login_required
def submissions_zip():
    wanted = filters.parse(form_required=True)
    registry = formdefs.registry()

    def write(out):
        book = CsvBook(about=True)
        try:
            count = sheets.write_submissions(book, current_user, wanted, registry)
            book.about(_about(wanted, registry, count))
            book.save(out)
        finally:
            book.close()
    return _send(write, "application/zip", _name(wanted.form, wanted, "zip"))


@bp.get("/exports/households.xlsx")
@login_required
def households_xlsx():
    village = text_arg("village", 32) or None
    if village is not None and villages.get_in_scope(current_user, village) is None:
        raise Problem("village_not_found")
    full_ids = request.args.get("ids") == "full"
    if full_ids:
        # ID numbers whole: an admin's explicit request only, and audited
        if not current_user.is_admin:
            raise Problem("forbidden")
        sheets.note_full_ids(current_user.id, village)

    def write(out):
        book = XlsxBook(about=True)
        count = sheets.write_households(book, current_user, village, full_ids=full_ids)
        book.about(sheets.about_rows(tr("农户台账", "Household ledger"), reviews.Filters(village=village),
                                     current_user, count, submissions_=False))
        book.save(out)
    return _send(write, XLSX, f"{'-'.join(['households'] + ([village] if village else []))}-{today_iso()}.xlsx")


@bp.get("/exports/attachments.zip")
@login_required
def attachments_zip():
    wanted = filters.parse(form_required=True)
    files_dir = current_app.config["FILES_DIR"]
    user = current_user._get_current_object()
    chunks, release = lanes.stream("export", user.id,
                                   lambda: sheets.attachment_chunks(user, wanted, files_dir))
    resp = Response(chunks, mimetype="application/zip")
    resp.call_on_close(release)
    name = _name(f"{wanted.form}-attachments", wanted, "zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
