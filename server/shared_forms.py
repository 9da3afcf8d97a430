"""Forms published on one app server reach the others (PostgreSQL: several servers, one files folder).

Every version a server serves is archived in the shared files folder (FILES_DIR/forms/<id>/<n>.json,
written atomically). Each server looks at that folder's listing at most once a second, before a
request; when it changed, it reloads its registry from its forms folder and the archive, and a
version that appeared in the archive since it last looked, newer than what it serves, becomes that
form's current version here too. Phones see it in their next bootstrap, whichever server answers.
On TinyDB there is one server, which swaps its own registry when it publishes: nothing to watch.
"""

import logging
import os
import threading
import time

from . import formdefs

log = logging.getLogger(__name__)
CHECK_EVERY = 1.0


def archive_dir(app):
    return os.path.join(app.config["FILES_DIR"], "forms")


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
    """A fresh registry (reading only); versions not in `seen` that are newer become current."""
    old = formdefs.registry(app)
    fresh = formdefs.FormRegistry.load(app.config["FORMS_DIR"], archive_dir(app), old.settings,
                                       write_archive=False)
    for form_id, version in sorted(fresh._versions):
        if (form_id, version) not in seen and version > fresh._current.get(form_id, 0):
            fresh._current[form_id] = version
    # what another server made current before stays current here
    for form_id, version in old._current.items():
        if version > fresh._current.get(form_id, 0) and (form_id, version) in fresh._versions:
            fresh._current[form_id] = version
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
