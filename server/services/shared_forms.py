"""Forms published on one app server reach the others (PostgreSQL: several servers, one files folder).

A form published from the web is written to the shared published-forms folder and archived in the
shared files folder (FILES_DIR/forms/<id>/<n>.json, written atomically). Each server looks at the
archive's listing at most once a second, before a request; when it changed, it reloads its registry
(the code's forms, the published ones, the archive), so every server serves the same current
versions. Phones see it in their next bootstrap, whichever server answers.
On TinyDB there is one server, which swaps its own registry when it publishes: nothing to watch.
"""

import logging
import os
import threading
import time

from server.forms import formdefs

log = logging.getLogger(__name__)
CHECK_EVERY = 1.0


def archive_dir(app):
    return formdefs.archive_dir(app)


def _listing(folder):
    """(form id, file name, size, mtime) of every archived version: cheap to take every second."""
    out = []
    try:
        for entry in os.scandir(folder):
            if entry.is_dir():
                for f in os.scandir(entry.path):
                    if f.name.endswith(".json"):
                        st = f.stat()
                        out.append((entry.name, f.name, st.st_size, st.st_mtime_ns))
    except FileNotFoundError:
        pass
    return tuple(sorted(out))


def _archived(listing):
    return {(form_id, int(name[:-5])) for form_id, name, _s, _m in listing if name[:-5].isdigit()}


def reload(app, seen):
    """A fresh registry (reading only): the published-forms folder is shared, so every server
    serves the same current versions, before and after a restart."""
    fresh = formdefs.load_registry(app, write_archive=False)
    app.extensions["jiedui_forms"] = fresh
    log.info("forms reloaded: another server published %s",
             sorted(k for k in fresh._versions if k not in seen))


def init_app(app):
    if not app.config.get("DATABASE_URL"):
        return
    state = {"listing": _listing(archive_dir(app)), "checked": time.monotonic()}
    lock = threading.Lock()
    every = app.config.get("FORMS_CHECK_EVERY", CHECK_EVERY)

    @app.before_request
    def notice_forms_published_elsewhere():
        now = time.monotonic()
        if now - state["checked"] < every or not lock.acquire(blocking=False):
            return
        try:
            state["checked"] = now
            listing = _listing(archive_dir(app))
            if listing != state["listing"]:
                seen = _archived(state["listing"])
                try:
                    reload(app, seen)
                    state["listing"] = listing
                except formdefs.FormDefinitionError:
                    log.exception("a form archived by another server cannot be loaded here")
                    state["listing"] = listing
        finally:
            lock.release()
