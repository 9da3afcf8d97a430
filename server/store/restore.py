"""Restoring a TinyDB data folder from a backup, the part that touches the folder's files: checking a
backup folder with the store itself (every partition must load), and swapping a checked, staged
folder in for the current one under the folder lock. What stays: the lock, backups/, logs; what
was there before goes to `before-restore-<stamp>/` in the data folder (nothing acknowledged is ever
deleted by a restore), and a failed swap puts everything back. The session key stays the server's
own (the running process signs with it), so phones stay logged in and come back on their own.

A restore staged from the web while the server runs waits in `restore-pending/` (its `data/` and a
`ready.json`) and is swapped in when the store next opens the folder (the next start).
"""

import fcntl
import json
import logging
import os
import shutil
from contextlib import contextmanager

from server.core.files import fsync_dir, write_atomic
from server.store.common import CORE
from server.store.tinydb.folder import lock_data_folder

log = logging.getLogger(__name__)

# What a data folder's store is made of (tinydb/; with the folders of its layout: villages/ and one
# a record family), and what lives in the files folder (backup.py).
STORE_FILES = ("core.json", "catalog.json", "keys.idx", "keys.new")
FILE_ENTRIES = ("attachments", "forms", "forms-published")
PENDING = "restore-pending"
READY = "ready.json"
ASIDE_PREFIX = "before-restore-"


class BackupUnusable(ValueError):
    """The backup cannot be restored: (zh, en) say why; nothing was changed."""

    def __init__(self, zh, en):
        self.zh, self.en = zh, en
        super().__init__(en)


def check_folder(folder, layout, tally):
    """Open `folder` read-only with the store (opened with `layout`) and load every partition: core,
    the villages, each record family's days. `tally(store, partition)` (the records layer's: the
    store names no record) counts what each holds, {name: number}; the sums are returned with the
    store's "seq". BackupUnusable when anything cannot be read."""
    from server.store.tinydb import open_readonly
    if not os.path.isfile(os.path.join(folder, "core.json")):
        raise BackupUnusable("其中没有 core.json（不是本系统的备份文件夹）。",
                             "it holds no core.json (not a backup folder of this system).")
    try:
        store = open_readonly(folder, layout)
    except Exception as e:  # any failure to read is a refusal, never a half restore
        raise BackupUnusable(f"无法读取：{e.__class__.__name__}: {str(e)[:200]}",
                             f"it cannot be read: {e.__class__.__name__}: {str(e)[:200]}") from None
    try:
        names = [CORE] + store.village_ids()
        for family in layout.families:
            names += store.partitions(family)
        summary = {}
        for name in names:
            try:
                store._ensure(name, install_empty=(name == CORE))
                counts = tally(store, name)
            except Exception as e:
                raise BackupUnusable(f"分区 {name} 无法读取：{str(e)[:200]}",
                                     f"partition {name} cannot be read: {str(e)[:200]}") from None
            for key, n in counts.items():
                summary[key] = summary.get(key, 0) + n
        summary["seq"] = store.seq
    finally:
        store.close()
    return summary


@contextmanager
def folder_lock(data_dir):
    """The data folder's lock (the one a running server holds), for the swap only."""
    fd = lock_data_folder(data_dir)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def store_entries(folder, layout):
    """The names in a data folder that make up its store: its files, the folders of `layout`
    (villages/, one a record family), and the journals."""
    from server.store.tinydb import JOURNAL_RE
    return (list(STORE_FILES) + list(layout.folders())
            + sorted(n for n in os.listdir(folder) if JOURNAL_RE.match(n)))


def swap_in(data_dir, files_dir, staged, stamp, layout):
    """Put the staged folder's data in place of the current data (the caller holds the folder
    lock). The current data goes to <data>/before-restore-<stamp>/; returns that path. `layout`
    is the one the store opens the folder with (its folders move with the rest)."""
    files_dir = files_dir or data_dir
    aside = os.path.join(data_dir, f"{ASIDE_PREFIX}{stamp}")
    os.makedirs(aside)
    out_names = [(data_dir, n) for n in store_entries(data_dir, layout)]
    out_names += [(files_dir, n) for n in FILE_ENTRIES]
    done = []  # (from, to), to undo
    try:
        for base, name in out_names:
            src = os.path.join(base, name)
            if os.path.lexists(src):
                dst = os.path.join(aside, name)
                shutil.move(src, dst)
                done.append((src, dst))
        # the session key is the server's own, not the backup's: logins (a phone's too) go on
        wanted = set(store_entries(staged, layout)) | set(FILE_ENTRIES)
        for name in sorted(n for n in os.listdir(staged) if n in wanted):
            base = files_dir if name in FILE_ENTRIES else data_dir
            src, dst = os.path.join(staged, name), os.path.join(base, name)
            shutil.move(src, dst)
            done.append((src, dst))
        fsync_dir(data_dir)
        if files_dir != data_dir:
            fsync_dir(files_dir)
    except BaseException:
        for src, dst in reversed(done):  # put everything back as it was
            try:
                if os.path.lexists(src):
                    shutil.rmtree(src) if os.path.isdir(src) else os.remove(src)
                shutil.move(dst, src)
            except OSError:
                log.exception("restore: could not move %s back to %s", dst, src)
        raise
    return aside


def pending_info(data_dir):
    """The restore staged from the web, waiting for the next start ({"backup", "staged_at", "by",
    ...}), or None."""
    try:
        with open(os.path.join(data_dir, PENDING, READY), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stage_pending(data_dir, staged, info):
    """Move a checked staged folder to restore-pending/ (replacing one staged before)."""
    pending = os.path.join(data_dir, PENDING)
    shutil.rmtree(pending, ignore_errors=True)
    os.makedirs(pending)
    shutil.move(staged, os.path.join(pending, "data"))
    write_atomic(os.path.join(pending, READY), json.dumps(info, ensure_ascii=False).encode("utf-8"))


def cancel_pending(data_dir):
    shutil.rmtree(os.path.join(data_dir, PENDING), ignore_errors=True)


def apply_pending(data_dir, files_dir, layout):
    """At start, before the store opens the folder (with `layout`): swap in a restore staged from
    the web, and remove what a restore killed half way left (its staging folder, an uploaded
    archive)."""
    info = pending_info(data_dir)
    try:
        leftovers = [n for n in os.listdir(data_dir) if n.startswith(".restore-")]
    except OSError:
        leftovers = []
    if info is None and not leftovers:
        return None
    pending = os.path.join(data_dir, PENDING)
    with folder_lock(data_dir):  # no other process works in the folder meanwhile
        for name in leftovers:
            path = os.path.join(data_dir, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        if info is None:
            return None
        aside = swap_in(data_dir, files_dir, os.path.join(pending, "data"), info.get("stamp") or "web",
                        layout)
        shutil.rmtree(pending, ignore_errors=True)
    log.warning("restored the data folder from %s (staged %s); the data before is in %s",
                info.get("backup"), info.get("staged_at"), aside)
    return dict(info, aside=aside)
