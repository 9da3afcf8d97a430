"""Backups: one picture of the data folder, made the same way by `flask --app server backup OUT`
and by /admin/backup (which packs it as one tar.gz under <data>/backups/ to download).

A backup folder is a data folder: every partition as a plain TinyDB file (no journal needed), the
attachments, the forms archive (every version ever served) and the forms published from the web
(forms-published/). The session key (secret_key) only when asked (`backup OUT --with-secret`):
whoever holds it can sign a session for any account, and a server started without one makes a new
one, so every login ends and people log in again.
"""

import logging
import os
import re
import shutil
import tarfile
import threading
import time

from server.core.clock import now, zone
from server.core.files import atomic_file
from server.records import audit
from server.store import get_store

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^jiedui-\d{8}-\d{6}\.tar\.gz\Z")
KEEP = 10


def write_folder(store, config, out, with_secret=False):
    """Write a backup folder at `out` (an empty or absent folder) from `store`; returns its seq."""
    store.export_to(out)
    files = config.get("FILES_DIR") or config["DATA_DIR"]
    src = os.path.join(files, "attachments")
    if os.path.isdir(src):
        shutil.copytree(src, os.path.join(out, "attachments"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.part*", ".tmp-*"))
    # on PostgreSQL the generated session key lives in the shared files folder (config.py)
    key = os.path.join(files if config.get("DATABASE_URL") else config["DATA_DIR"], "secret_key")
    if with_secret and os.path.exists(key):
        shutil.copy2(key, os.path.join(out, "secret_key"))
    archive = os.path.join(files, "forms")  # the forms archive (formdefs.init_app)
    if os.path.isdir(archive):
        shutil.copytree(archive, os.path.join(out, "forms"), dirs_exist_ok=True)
    published = os.path.join(files, "forms-published")  # formdefs.published_dir
    if os.path.isdir(published):
        shutil.copytree(published, os.path.join(out, "forms-published"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".*"))
    return store.seq


class WebBackups:
    """The admin page's backups: one at a time, in a background thread, kept under
    <data>/backups/ (the newest KEEP), each one tar.gz."""

    def __init__(self, config):
        self.config = config
        self.folder = os.path.join(config["DATA_DIR"], "backups")
        self.lock = threading.Lock()
        self.thread = None
        self.last_error = None
        self.started_at = None

    @property
    def running(self):
        return self.lock.locked()

    def start(self, store, on_done=None):
        """Begin a backup; False when one is already running (two never run at once)."""
        if not self.lock.acquire(blocking=False):
            return False
        self.last_error = None
        self.started_at = now()
        self.thread = threading.Thread(target=self._run, args=(store, on_done), name="web-backup",
                                       daemon=True)
        self.thread.start()
        return True

    def wait(self, timeout=None):
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, store, on_done):
        try:
            os.makedirs(self.folder, exist_ok=True)
            stamp = now().astimezone(zone()).strftime("%Y%m%d-%H%M%S")
            name = f"jiedui-{stamp}.tar.gz"
            work = os.path.join(self.folder, f".work-{stamp}")
            shutil.rmtree(work, ignore_errors=True)
            try:
                seq = write_folder(store, self.config, work)
                with atomic_file(os.path.join(self.folder, name)) as raw, \
                        tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                    tar.add(work, arcname=name[:-len(".tar.gz")])
            finally:
                shutil.rmtree(work, ignore_errors=True)
            self._prune()
            if on_done:
                on_done(name, seq)
        except Exception as e:  # shown on the page; the data folder is untouched either way
            log.exception("web backup failed")
            self.last_error = str(e)[:300]
        finally:
            self.lock.release()

    def _prune(self):
        for old in self.list()[KEEP:]:
            try:
                os.remove(old["path"])
            except OSError:
                pass

    def list(self):
        """The backups kept, newest first: [{"name", "path", "size", "mtime"}]."""
        if not os.path.isdir(self.folder):
            return []
        out = []
        for name in os.listdir(self.folder):
            if NAME_RE.match(name):
                path = os.path.join(self.folder, name)
                st = os.stat(path)
                out.append({"name": name, "path": path, "size": st.st_size, "mtime": st.st_mtime})
        return sorted(out, key=lambda b: b["name"], reverse=True)

    def path_of(self, name):
        if not isinstance(name, str) or not NAME_RE.match(name):
            return None
        path = os.path.join(self.folder, name)
        return path if os.path.isfile(path) else None


def start_for(app, actor):
    """Begin a web backup of the app's store, audited by `actor` when it is done; False when one is
    already running."""
    store = get_store(app)

    def done(name, seq):
        store.write(lambda tx: audit.record(tx, actor, "backup", name, {"seq": seq}))
    return of_app(app).start(store, on_done=done)


def of_app(app):
    runner = app.extensions.get("jiedui_backups")
    if runner is None:
        runner = app.extensions.setdefault("jiedui_backups", WebBackups(app.config))
    return runner


def iso_of(timestamp):
    """A file time as stored times are written (ISO 8601 with offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(timestamp))
