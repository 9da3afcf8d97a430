"""What killed processes leave behind, cleared when the server starts.

A kill -9 during an export or a backup leaves its working files: openpyxl's sheet files and the
CSV folders of exports (in the temp folder), the working copy of a web backup (a whole copy of the
data, secret key included, under <data>/backups/.work-*) and a half-written archive (.tmp-*). So
every temporary file of a server process goes under <data>/tmp/<pid>/ (TMPDIR and Python's
tempfile point there from the start, and print workers inherit it), and at start the folders of
processes no longer alive are removed with the backups' leftovers.
"""

import logging
import os
import shutil
import tempfile
import time

log = logging.getLogger(__name__)
# On PostgreSQL there is no folder lock: another server may be writing a backup in a shared
# folder, so only leftovers older than this are taken for a dead process's.
SHARED_LEFTOVER_AGE = 24 * 3600


def tmp_root(config):
    return os.path.join(config["DATA_DIR"], "tmp")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def clean(config, now=None):
    """Remove the temp folders of dead processes and the backups' working copies; returns the
    paths removed. Call it only once the data folder is this process's (after the store's lock)."""
    removed = []
    root = tmp_root(config)
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.isdigit() and (int(name) == os.getpid() or _alive(int(name))):
                continue
            path = os.path.join(root, name)
            _remove(path)
            removed.append(path)
    backups = os.path.join(config["DATA_DIR"], "backups")
    if os.path.isdir(backups):
        now = time.time() if now is None else now
        shared = bool(config.get("DATABASE_URL"))
        for name in os.listdir(backups):
            if not name.startswith((".work-", ".tmp-")):
                continue
            path = os.path.join(backups, name)
            try:
                if shared and now - os.path.getmtime(path) < SHARED_LEFTOVER_AGE:
                    continue
            except OSError:
                continue
            _remove(path)
            removed.append(path)
    if removed:
        log.warning("removed %d leftovers of killed exports or backups: %s", len(removed),
                    ", ".join(os.path.relpath(p, config["DATA_DIR"]) for p in removed[:10]))
    return removed


def start(config):
    """At server start: clean, then give this process its own temp folder. Returns the folder."""
    clean(config)
    mine = os.path.join(tmp_root(config), str(os.getpid()))
    os.makedirs(mine, exist_ok=True)
    os.environ["TMPDIR"] = mine
    tempfile.tempdir = mine
    return mine
