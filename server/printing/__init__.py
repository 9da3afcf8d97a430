"""Household assistance profiles as PDFs: the single-profile route, village print jobs, the CLI.

The pure core (context and rendering) is in `profile`, the cache, worker pools, the print lane and
batches in `jobs`, profiles rendered ahead of time in `prerender`; this module only wires them to
Flask and click, and reads the printing settings:

- PRINT_WORKERS (JIEDUI_PRINT_WORKERS): print worker processes, default min(2, cores).
- PRINT_QUEUE (JIEDUI_PRINT_QUEUE): single profiles waiting or rendering at once, default 2 per
  worker; past it a print answers 503 with Retry-After.
- PRINT_WAIT_SECONDS: how long a request waits for its profile before answering 503 (it goes on
  rendering into the cache).
- PRINT_PRERENDER (JIEDUI_PRINT_PRERENDER=0 turns it off; off in tests unless asked for),
  PRINT_IDLE_SECONDS (JIEDUI_PRINT_IDLE_SECONDS, default 90): a household's profile is rendered
  ahead once its data has been still that long; PRINT_POLL_SECONDS: how often the store's change
  cursors are read.
- IMAGE_MAX_PIXELS: the pixel budget of a photo (server/images.py).
- PRINT_TEST_GATE (JIEDUI_TEST_PRINT_GATE, only with JIEDUI_TEST_FAULTS=1): a FIFO each single
  print reads one byte from before rendering, so tests can hold prints "slow" deterministically.
"""

import os
import threading

import click
from flask import (Blueprint, current_app, jsonify, make_response, redirect, render_template, request,
                   send_file, url_for)
from flask.cli import with_appcontext
from flask_login import current_user, login_required
from werkzeug.routing import BuildError

from server.web.errors import wants_json
from server.core.i18n import current_lang
from server.core.problems import Problem
from server.records import households, villages
from server.core import clock, images
from server.printing import jobs
from server.printing.jobs import (Busy, PrintJobs, default_workers, print_household, print_village, shutdown_pools, write_zip)
from server.printing.profile import LANGS, build_profile_context, render_profile_pdf

__all__ = ["bp", "print_profiles_command", "print_jobs", "build_profile_context",
           "render_profile_pdf", "forms_for", "prerenderer_of"]

bp = Blueprint("printing", __name__)
print_jobs = PrintJobs()
_zip_lock = threading.Lock()


@bp.record_once
def _configure(state):
    """Printing's settings, from the environment unless the app's config (tests) already has them."""
    app = state.app
    env = os.environ.get

    def number(name, default):
        try:
            value = float(env(name) or default)
        except ValueError:
            raise RuntimeError(f"{name} must be a number, not {env(name)!r}") from None
        return value if value == value and 0 <= value < 1e9 else default

    app.config.setdefault("PRINT_QUEUE", int(number("JIEDUI_PRINT_QUEUE", 0)) or None)
    app.config.setdefault("PRINT_WAIT_SECONDS", 120)
    app.config.setdefault("PRINT_PRERENDER", env("JIEDUI_PRINT_PRERENDER", "1") != "0" and not app.testing)
    app.config.setdefault("PRINT_IDLE_SECONDS", number("JIEDUI_PRINT_IDLE_SECONDS", 90))
    app.config.setdefault("PRINT_POLL_SECONDS", 30.0)  # a changed village costs a scan of its records
    app.config.setdefault("IMAGE_MAX_PIXELS", images.MAX_PIXELS)
    gate = env("JIEDUI_TEST_PRINT_GATE") if app.config.get("TEST_FAULTS") else None
    app.config.setdefault("PRINT_TEST_GATE", gate)
    jobs.configure(max_pixels=app.config["IMAGE_MAX_PIXELS"])


@bp.before_app_request
def _start_background_printer():
    """Profiles are rendered ahead once a server is serving (never in a CLI command)."""
    app = current_app._get_current_object()
    if app.config.get("PRINT_PRERENDER") and prerenderer_of(app) is None:
        from server.printing.prerender import start
        start(app)


def prerenderer_of(app):
    return app.extensions.get("jiedui_prerender")


# ---- helpers ---------------------------------------------------------------------------------------


def forms_for(app):
    """The app's form registry: every version of every form, so each submission prints with the
    labels of the version it was made with."""
    from server.forms import formdefs
    return formdefs.registry(app)


def workers_for(app):
    n = app.config.get("PRINT_WORKERS")
    return max(1, int(n)) if n else default_workers()


def lane_limit(app):
    n = app.config.get("PRINT_QUEUE")
    return max(1, int(n)) if n else 2 * workers_for(app)


def _test_gate(app):
    """Tests only (PRINT_TEST_GATE): wait for one byte on the gate FIFO, as a slow render would."""
    path = app.config.get("PRINT_TEST_GATE")
    if path and app.config.get("TEST_FAULTS"):
        with open(path, "rb", buffering=0) as gate:
            gate.read(1)


def record_url_builder(app, host_url=None):
    """The household page link printed as a QR code: PUBLIC_BASE_URL when configured, otherwise the
    address the request came in on (or the local server for the CLI)."""
    base = (app.config.get("PUBLIC_BASE_URL") or host_url or "http://127.0.0.1:5000").rstrip("/")
    marker = "HOUSEHOLD-ID-MARKER"
    try:
        with app.test_request_context():
            pattern = url_for("households.detail", household_id=marker)
    except BuildError:
        pattern = f"/households/{marker}"

    def url_for_household(household_id):
        return base + pattern.replace(marker, household_id)
    return url_for_household


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
    out["created_at"] = clock.show(job["created_at"]) if job.get("created_at") else None
    out["finished_at"] = clock.show(job["finished_at"]) if job.get("finished_at") else None
    out["status_url"] = url_for("printing.job_status", village_id=vid, job_id=job["id"])
    if job["state"] == "done" and job.get("path"):
        out["download_url"] = url_for("printing.job_download", village_id=vid, job_id=job["id"])
        out["zip_url"] = out["download_url"] + "?format=zip"
    return out


def _safe_download_name(text):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


# ---- views -------------------------------------------------------------------------------------------


@bp.get("/households/<household_id>/profile.pdf")
@login_required
def profile_pdf(household_id):
    """One household's profile, A4 PDF; from the cache when the household has not changed. At most
    PRINT_QUEUE of these wait for the print workers at once: past that, 503 with Retry-After."""
    from server.store import get_store
    household = households.get_for(current_user, household_id)
    if household is None:
        raise Problem("household_not_found")
    lang = _lang_arg()
    app = current_app._get_current_object()
    record_url = record_url_builder(app, request.host_url)
    _remember_base_url(app, request.host_url)
    try:
        jobs.lane.enter(lane_limit(app))
    except Busy as e:
        raise Problem("busy", retry_after=e.retry_after, extra={"retry_after": e.retry_after})
    try:
        _test_gate(app)
        pdf, hit = print_household(
            get_store(), household, files_dir=app.config["FILES_DIR"], forms=forms_for(app), lang=lang,
            mask=not current_user.is_admin, printed_by=current_user.display_name,
            record_url=record_url(household["id"]), workers=workers_for(app),
            wait=app.config["PRINT_WAIT_SECONDS"], printed_at=jobs.printed_now())
    except Busy as e:
        raise Problem("busy", retry_after=e.retry_after, extra={"retry_after": e.retry_after})
    finally:
        jobs.lane.leave()
    resp = make_response(pdf)
    resp.headers["Content-Type"] = "application/pdf"
    disposition = "attachment" if request.args.get("download") else "inline"
    resp.headers["Content-Disposition"] = (
        f'{disposition}; filename="profile-{_safe_download_name(household["id"])}.pdf"')
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Profile-Cache"] = "hit" if hit else "miss"
    return resp


def _remember_base_url(app, host_url):
    """The address people print from: the background printer puts the same QR link in its
    profiles, so theirs are found in the cache."""
    if not app.config.get("PUBLIC_BASE_URL"):
        app.extensions["jiedui_print_base_url"] = host_url


@bp.get("/villages/<village_id>/print")
@login_required
def village_page(village_id):
    village = _village_or_404(village_id)
    count = households.count_in_village(village_id)
    own = [j for j in print_jobs.for_village(village_id)
           if current_user.is_admin or j["user_id"] == current_user.id]
    current = request.args.get("job")
    current_job = next((j for j in own if j["id"] == current), None)
    return render_template("print/village.html", village=village, household_count=count,
                           jobs=[_job_json(j) for j in own[:10]],
                           current_job=_job_json(current_job) if current_job else None,
                           lang=current_lang())


@bp.post("/villages/<village_id>/print-jobs")
@login_required
def start_job(village_id):
    """Start (or join the running) batch print of a village: 202 with the job's progress."""
    _village_or_404(village_id)
    lang = _lang_arg()
    app = current_app._get_current_object()
    from server.store import get_store
    _remember_base_url(app, request.host_url)
    job, created = print_jobs.start(
        get_store(), village_id, files_dir=app.config["FILES_DIR"], forms=forms_for(app), lang=lang,
        mask=not current_user.is_admin, printed_by=current_user.display_name,
        user_id=current_user.id, record_url_for=record_url_builder(app, request.host_url),
        workers=workers_for(app), printed_at=jobs.printed_now())
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
    with _zip_lock:
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


# ---- command line ------------------------------------------------------------------------------------


@click.command("print-profiles")
@click.option("--village", "village_id", required=True, help="Village id (村编号).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The PDF to write.")
@click.option("--lang", type=click.Choice(LANGS), default="zh", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: PRINT_WORKERS, at most 2).")
@click.option("--show-phones", is_flag=True, help="Print phone numbers unmasked (admin use).")
@click.option("--by", "printed_by", default=None, help="Name printed in the footer.")
@with_appcontext
def print_profiles_command(village_id, output, lang, workers, show_phones, printed_by):
    """Print every household profile of a village into one PDF (reads the data, never locks it)."""
    from server.store import open_readonly
    app = current_app._get_current_object()
    store = open_readonly(app)
    try:
        if not villages.get(village_id, store):
            raise click.ClickException(f"未知的村 {village_id}。Unknown village {village_id}.")
        total = households.count_in_village(village_id, store)
        if not total:
            raise click.ClickException(f"村 {village_id} 没有农户。Village {village_id} has no households.")
        if not printed_by:
            import getpass
            try:
                printed_by = getpass.getuser()
            except Exception:
                printed_by = "cli"
        with click.progressbar(length=total, label=f"打印 Printing {village_id}",
                               show_pos=True) as bar:
            def progress(done, _total):
                bar.update(done - bar.pos)
            summary = print_village(
                store, village_id, os.path.abspath(output), files_dir=app.config["FILES_DIR"],
                forms=forms_for(app), lang=lang, mask=not show_phones, printed_by=printed_by,
                record_url_for=record_url_builder(app), workers=workers or workers_for(app),
                progress=progress, printed_at=jobs.printed_now())
    finally:
        store.close()
        shutdown_pools()
    for err in summary["errors"]:
        click.echo(f"失败 Failed {err['household_id']}: {err['message']}", err=True)
    if not summary["out_path"]:
        raise click.ClickException("没有生成任何档案。No profile could be printed.")
    click.echo(f"已写入 Wrote {output}: {summary['total'] - len(summary['errors'])} 户 households "
               f"({summary['cache_hits']} 来自缓存 from cache, {summary['rendered']} 新生成 rendered)")
    if summary["errors"]:
        raise SystemExit(1)
