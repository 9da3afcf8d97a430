"""Household assistance profiles as PDFs: the printing service the views (web/printing.py) and the
command (cli/printing.py) call.

The pure core (context and rendering) is in `profile`, the cache, worker pools, the print lane and
batches in `jobs`, profiles rendered ahead of time in `prerender`; this module reads the printing
settings (read by config.py) and hands the store to them, so no view or command opens it:

- PRINT_WORKERS (JIEDUI_PRINT_WORKERS): print worker processes, default min(2, cores).
- PRINT_QUEUE (JIEDUI_PRINT_QUEUE): single profiles waiting or rendering at once, default 2 per
  worker; past it a print answers 503 with Retry-After.
- PRINT_WAIT_SECONDS: how long a request waits for its profile before answering 503 (it goes on
  rendering into the cache).
- PRINT_PRERENDER (JIEDUI_PRINT_PRERENDER=0 turns it off; off in tests unless asked for),
  PRINT_IDLE_SECONDS (JIEDUI_PRINT_IDLE_SECONDS, default 90): a household's profile is rendered
  ahead once its data has been still that long; PRINT_POLL_SECONDS: how often the store's change
  cursors are read.
- IMAGE_MAX_PIXELS: the pixel budget of a photo (core/images.py).
"""

import threading

from flask import url_for
from werkzeug.routing import BuildError

from server.core.problems import Problem
from server.printing import jobs
from server.records import households
from server.printing.jobs import Busy, PrintJobs, default_workers, print_household, print_village
from server.printing.profile import LANGS, build_profile_context, render_profile_pdf
from server.store import get_store, open_readonly

__all__ = ["print_jobs", "build_profile_context", "render_profile_pdf", "forms_for", "prerenderer_of",
           "configure", "print_one", "start_village_job", "print_village_to", "LANGS"]

print_jobs = PrintJobs()
zip_lock = threading.Lock()


def configure(app):
    """The workers' pixel budget, from the app's settings (config.py)."""
    jobs.configure(max_pixels=app.config["IMAGE_MAX_PIXELS"])


def start_background_printer(app):
    """Profiles are rendered ahead once a server is serving (never in a CLI command)."""
    if app.config.get("PRINT_PRERENDER") and prerenderer_of(app) is None:
        from server.printing.prerender import start
        start(app)


def remember_base_url(app, host_url):
    """The address people print from: the background printer puts the same QR link in its
    profiles, so theirs are found in the cache."""
    if not app.config.get("PUBLIC_BASE_URL"):
        app.extensions["jiedui_print_base_url"] = host_url


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


def print_one(app, household, *, lang, mask, printed_by, host_url):
    """One household's profile: (pdf bytes, served from the cache?). At most PRINT_QUEUE wait for
    the workers at once: past that, Problem("busy") with Retry-After."""
    record_url = record_url_builder(app, host_url)
    remember_base_url(app, host_url)
    try:
        jobs.lane.enter(lane_limit(app))
    except Busy as e:
        raise Problem("busy", retry_after=e.retry_after, extra={"retry_after": e.retry_after})
    try:
        return print_household(
            get_store(app), household, files_dir=app.config["FILES_DIR"], forms=forms_for(app),
            lang=lang, mask=mask, printed_by=printed_by, record_url=record_url(household["id"]),
            workers=workers_for(app), wait=app.config["PRINT_WAIT_SECONDS"],
            printed_at=jobs.printed_now())
    except Busy as e:
        raise Problem("busy", retry_after=e.retry_after, extra={"retry_after": e.retry_after})
    finally:
        jobs.lane.leave()


def batch_selection(user, village_id, *, mine=False, group=None, lang="zh", db=None):
    """Which households of a village a batch prints: (ids, or None for the whole village; the
    words naming them on the cover). `mine`: those paired with `user`; `group`: one group."""
    if not mine and not group:
        return None, ""
    ids = [h["id"] for h in households.in_village(village_id, db)
           if (not mine or user.id in (h.get("cadre_ids") or []))
           and (not group or h.get("group") == group)]
    t = jobs.texts(lang)
    words = []
    if mine:
        words.append(t["cover_mine"].format(name=user.display_name))
    if group:
        words.append(t["cover_group"].format(group=group))
    return ids, " · ".join(words)


def start_village_job(app, village_id, *, lang, mask, printed_by, user_id, host_url,
                      household_ids=None, scope=""):
    """Start (or join the running) batch print of a village, or of some of its households:
    (job, created)."""
    remember_base_url(app, host_url)
    return print_jobs.start(
        get_store(app), village_id, files_dir=app.config["FILES_DIR"], forms=forms_for(app),
        lang=lang, mask=mask, printed_by=printed_by, user_id=user_id,
        record_url_for=record_url_builder(app, host_url), workers=workers_for(app),
        printed_at=jobs.printed_now(), household_ids=household_ids, scope=scope)


def print_village_to(app, village_id, output, *, lang, mask, printed_by, workers=None, progress=None,
                     store=None):
    """A village's profiles into one PDF at `output`, beside a running server (the store opened
    read-only unless given): the print summary."""
    own = store is None
    store = store or open_readonly(app)
    try:
        return print_village(
            store, village_id, output, files_dir=app.config["FILES_DIR"], forms=forms_for(app),
            lang=lang, mask=mask, printed_by=printed_by, record_url_for=record_url_builder(app),
            workers=workers or workers_for(app), progress=progress, printed_at=jobs.printed_now())
    finally:
        if own:
            store.close()

