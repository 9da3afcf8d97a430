"""Profiles rendered ahead of time, so a village prints from the cache.

A background thread of the server reads the store's change cursors (its `seq`, then each village's
`partition_seq`) every PRINT_POLL_SECONDS (30); a village whose cursor moved is asked, through the
record owners, which households and submissions changed since (a scan of that village's records,
so not more often), and each such household is noted with the time it changed. Once a household's
data has been still for PRINT_IDLE_SECONDS, its profile (Chinese, phones masked: what cadres and
supervisors print) is rendered into the cache by a one-process pool at nice 19, one at a time, and
only while no single print waits in the lane and no village batch runs: sync and people's prints
always come first. What it has seen is kept in <files dir>/prints/prerender.json, so a restart
picks up where it stopped; a village it has never seen starts from its current cursor (profiles of
data older than the first start are rendered by the first print that needs them, then kept fresh).
"""

import json
import logging
import os
import threading
import time

from server.core.files import write_atomic
from server.records import households, submissions
from server.printing import jobs

log = logging.getLogger(__name__)

IDLE_POOL_SECONDS = 300  # the background worker process is let go after this long with nothing to do


class Prerenderer:
    def __init__(self, app, *, idle=None, poll=None, lang="zh", mask=True):
        self.app = app
        self.idle = float(app.config["PRINT_IDLE_SECONDS"] if idle is None else idle)
        self.poll = float(app.config["PRINT_POLL_SECONDS"] if poll is None else poll)
        self.lang, self.mask = lang, mask
        self.files_dir = app.config["FILES_DIR"]
        self.state_path = os.path.join(jobs.prints_dir(self.files_dir), "prerender.json")
        self.cursors = {}     # village id -> the partition seq whose changes are noted
        self.pending = {}     # household id -> when (monotonic) its latest change was noticed
        self.base_url = None  # the address the last print came from (the QR link)
        self.rendered = 0
        self.stood_aside = 0
        self._seen_seq = None
        self._last_work = time.monotonic()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = None
        self._load()

    # ---- state kept across restarts ----------------------------------------------------------

    def _load(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            return
        self.cursors = {k: int(v) for k, v in (state.get("cursors") or {}).items() if isinstance(v, int)}
        # changed before the restart: counted as changed at the first round after it
        self.pending = {h: None for h in state.get("pending") or [] if isinstance(h, str)}
        self.base_url = state.get("base_url") if isinstance(state.get("base_url"), str) else None

    def _save(self):
        state = {"cursors": self.cursors, "pending": sorted(self.pending), "base_url": self.base_url}
        try:
            write_atomic(self.state_path, json.dumps(state), durable=False)
        except OSError:
            log.warning("cannot keep the background printer's state in %s", self.state_path, exc_info=True)

    # ---- noticing changes --------------------------------------------------------------------

    def scan(self, store, now):
        """Note every household changed since the last scan (cheap when nothing was written)."""
        seq = store.seq
        if seq == self._seen_seq:
            return False
        noted = False
        for vid in store.village_ids():
            cursor = store.partition_seq(vid)
            since = self.cursors.get(vid)
            if since is None:  # a village never seen: from this round's start on, so a change
                self.cursors[vid] = min(cursor, seq)  # landing while it is read is still noted
                noted = True
                continue
            if cursor <= since:
                continue
            newer = lambda d, since=since: (d.get("seq") or 0) > since  # noqa: E731
            changed = {h["id"] for h in households.in_village(vid, store, cond=newer)}
            changed.update(s.get("household_id") for s in submissions.in_village(vid, store, cond=newer))
            for hid in changed:
                if isinstance(hid, str):
                    self.pending[hid] = now
            self.cursors[vid] = cursor
            noted = True
        self._seen_seq = seq
        if noted:
            with self._changed:
                self._save()
                self._changed.notify_all()
        return noted

    # ---- rendering ---------------------------------------------------------------------------

    def busy(self):
        from server.printing import print_jobs
        return jobs.lane.inside > 0 or print_jobs.running()

    def step(self, now):
        """One round: note changes, then render at most one household that has been still long
        enough. Returns True when it rendered (or dropped) one, so the caller goes on at once."""
        store = self.app.extensions.get("jiedui_store")
        if store is None:  # not open yet, or closed
            return False
        from server.printing import forms_for, record_url_builder
        with self.app.app_context():
            self.scan(store, now)
            for hid, noted in list(self.pending.items()):
                if noted is None:
                    self.pending[hid] = now
            if self.app.extensions.get("jiedui_print_base_url"):
                self.base_url = self.app.extensions["jiedui_print_base_url"]
            due = sorted((t, h) for h, t in self.pending.items() if now - t >= self.idle)
            if not due:
                if now - self._last_work > IDLE_POOL_SECONDS:
                    jobs.discard_background_pool()
                return False
            if self.busy():
                self.stood_aside += 1
                return False
            _, hid = due[0]
            household = households.get(hid, store)
            try:
                if household is not None:
                    url = record_url_builder(self.app, self.base_url)(hid)
                    if jobs.render_ahead(store, household, files_dir=self.files_dir,
                                         forms=forms_for(self.app), lang=self.lang, mask=self.mask,
                                         record_url=url):
                        self.rendered += 1
            except Exception:  # one broken household must not stop the others; it is tried again
                log.exception("rendering the profile of %s ahead failed", hid)   # on its next change
            self._last_work = time.monotonic()
            with self._changed:
                if self.pending.get(hid) == due[0][0]:  # not changed again while rendering
                    self.pending.pop(hid, None)
                self._save()
                self._changed.notify_all()
            return True

    # ---- the thread --------------------------------------------------------------------------

    def _run(self):
        while not self._stop.is_set():
            try:
                worked = self.step(time.monotonic())
            except Exception:
                log.exception("background printer round failed")
                worked = False
            if not worked:
                self._stop.wait(self.poll)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="print-ahead", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=30):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_until(self, predicate, timeout):
        """For tests: block until predicate(self) holds after a round (no sleeping loop)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


_start_lock = threading.Lock()


def start(app, **kw):
    """The app's background printer, started once."""
    with _start_lock:
        found = app.extensions.get("jiedui_prerender")
        if found is None:
            found = Prerenderer(app, **kw).start()
            app.extensions["jiedui_prerender"] = found
            import atexit
            atexit.register(found.stop, 5)
        return found


def stop(app):
    found = app.extensions.pop("jiedui_prerender", None)
    if found is not None:
        found.stop()
    jobs.discard_background_pool()

