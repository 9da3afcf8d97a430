"""Printing's pages and routes: one household's profile PDF, a village's print page, its batch jobs
and their downloads. Views check access and parse; the printing service renders."""

import os

from flask import (Blueprint, current_app, jsonify, make_response, redirect, render_template, request,
                   send_file, url_for)
from flask_login import current_user, login_required

from server import printing
from server.core import clock
from server.core.i18n import current_lang
from server.core.problems import Problem
from server.core.text import NOT_ONE_LINE_RE
from server.printing import jobs, print_jobs
from server.printing.jobs import write_zip
from server.printing.profile import LANGS
from server.records import households, villages
from server.web.errors import wants_json

bp = Blueprint("printing", __name__)


@bp.record_once
def _configure(state):
    printing.configure(state.app)


@bp.before_app_request
def _start_background_printer():
    printing.start_background_printer(current_app._get_current_object())


def _lang_arg():
    lang = request.values.get("lang")
    if lang is None and request.is_json:
        body = request.get_json(silent=True)
        lang = body.get("lang") if isinstance(body, dict) else None
    if lang in (None, ""):
        return current_lang()
    if lang not in LANGS:
        raise Problem("bad_lang")
    return lang


def _village_or_404(village_id):
    village = villages.get_in_scope(current_user, village_id)
    if village is None:
        raise Problem("village_not_found")
    return village


def _job_or_404(village_id, job_id):
    _village_or_404(village_id)
    job = print_jobs.get(job_id) if isinstance(job_id, str) else None
    if (job is None or job["village_id"] != village_id
            or not (current_user.is_admin or job["user_id"] == current_user.id)):
        raise Problem("job_not_found")
    return job


def _job_json(job):
    vid = job["village_id"]
    out = {k: job[k] for k in ("id", "village_id", "state", "done", "total", "cache_hits",
                               "rendered", "errors", "error", "lang")}
    out["scope"] = job.get("scope") or ""
    out["created_at"] = clock.show(job["created_at"]) if job.get("created_at") else None
    out["finished_at"] = clock.show(job["finished_at"]) if job.get("finished_at") else None
    out["status_url"] = url_for("printing.job_status", village_id=vid, job_id=job["id"])
    if job["state"] == "done" and job.get("path"):
        out["download_url"] = url_for("printing.job_download", village_id=vid, job_id=job["id"])
        out["zip_url"] = out["download_url"] + "?format=zip"
    return out


def _selection_args():
    """?scope=mine (the caller's own households) and ?group=G (one group), from a form or JSON."""
    body = request.get_json(silent=True) if request.is_json else None
    values = body if isinstance(body, dict) else request.values
    scope = values.get("scope") or "village"
    if scope not in ("village", "mine"):
        raise Problem("bad_parameter", name="scope", reason_zh="须为 village 或 mine",
                      reason_en="must be village or mine")
    group = values.get("group") or ""
    if not isinstance(group, str) or len(group) > 30 or NOT_ONE_LINE_RE.search(group):
        raise Problem("bad_parameter", name="group", reason_zh="组别不正确", reason_en="not a group")
    return scope == "mine", group or None


def _safe_download_name(text):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


# ---- views -------------------------------------------------------------------------------------------


@bp.get("/households/<household_id>/profile.pdf")
@login_required
def profile_pdf(household_id):
    """One household's profile, A4 PDF; from the cache when the household has not changed. At most
    PRINT_QUEUE of these wait for the print workers at once: past that, 503 with Retry-After."""
    household = households.get_for(current_user, household_id)
    if household is None:
        raise Problem("household_not_found")
    pdf, hit = printing.print_one(current_app._get_current_object(), household, lang=_lang_arg(),
                                  mask=not current_user.is_admin,
                                  printed_by=current_user.display_name, host_url=request.host_url)
    resp = make_response(pdf)
    resp.headers["Content-Type"] = "application/pdf"
    disposition = "attachment" if request.args.get("download") else "inline"
    resp.headers["Content-Disposition"] = (
        f'{disposition}; filename="profile-{_safe_download_name(household["id"])}.pdf"')
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Profile-Cache"] = "hit" if hit else "miss"
    return resp


@bp.get("/villages/<village_id>/print")
@login_required
def village_page(village_id):
    village = _village_or_404(village_id)
    every = households.in_village(village_id)
    count = len(every)
    groups = sorted({h.get("group") for h in every if h.get("group")})
    mine = sum(1 for h in every if current_user.id in (h.get("cadre_ids") or []))
    own = [j for j in print_jobs.for_village(village_id)
           if current_user.is_admin or j["user_id"] == current_user.id]
    current = request.args.get("job")
    current_job = next((j for j in own if j["id"] == current), None)
    return render_template("print/village.html", village=village, household_count=count,
                           groups=groups, mine_count=mine, chosen_scope=request.args.get("scope", ""),
                           chosen_group=request.args.get("group", ""),
                           jobs=[_job_json(j) for j in own[:10]],
                           current_job=_job_json(current_job) if current_job else None,
                           lang=current_lang())


@bp.post("/villages/<village_id>/print-jobs")
@login_required
def start_job(village_id):
    """Start (or join the running) batch print of a village: 202 with the job's progress."""
    _village_or_404(village_id)
    lang = _lang_arg()
    mine, group = _selection_args()
    ids, scope = printing.batch_selection(current_user, village_id, mine=mine, group=group, lang=lang)
    if ids is not None and not ids:
        raise Problem("bad_parameter", name="scope", reason_zh="没有符合条件的农户",
                      reason_en="no household matches")
    job, created = printing.start_village_job(
        current_app._get_current_object(), village_id, lang=lang,
        mask=not current_user.is_admin, printed_by=current_user.display_name,
        user_id=current_user.id, host_url=request.host_url, household_ids=ids, scope=scope)
    if wants_json() or request.is_json or request.headers.get("X-CSRFToken"):
        body = _job_json(job)
        body["created"] = created
        return jsonify(body), 202
    return redirect(url_for("printing.village_page", village_id=village_id, job=job["id"]))


@bp.get("/villages/<village_id>/print-jobs/<job_id>")
@login_required
def job_status(village_id, job_id):
    return jsonify(_job_json(_job_or_404(village_id, job_id)))


@bp.get("/villages/<village_id>/print-jobs/<job_id>/download")
@login_required
def job_download(village_id, job_id):
    job = _job_or_404(village_id, job_id)
    if job["state"] != "done" or not job.get("path"):
        raise Problem("print_not_ready", extra={"state": job["state"]})
    fmt = request.args.get("format", "pdf")
    if fmt not in ("pdf", "zip"):
        raise Problem("bad_format", allowed="pdf, zip")
    name = _safe_download_name(f"{village_id}-profiles-{job['id']}")
    if fmt == "pdf":
        if not os.path.exists(job["path"]):
            raise Problem("print_gone")
        return send_file(job["path"], mimetype="application/pdf", as_attachment=True,
                         download_name=name + ".pdf", max_age=0)
    zip_path = job["path"][:-4] + ".zip"
    with printing.zip_lock:
        if not os.path.exists(zip_path):
            summary = job.get("_summary")
            if not summary:
                raise Problem("print_gone")
            try:
                write_zip(summary, zip_path)
            except jobs.unreadable_cache_errors():  # evicted since, or emptied by a power cut
                raise Problem("print_stale")
    return send_file(zip_path, mimetype="application/zip", as_attachment=True,
                     download_name=name + ".zip", max_age=0)
