"""Restore from a backup (`flask --app server restore BACKUP`, and /admin/backup): the backup, a
folder written by `backup OUT` or the page's tar.gz, is unpacked into a staging folder beside the
data, checked by the store (every partition must load; else refused, nothing changed), given a new
data epoch (records/epochs.py: phones then pull everything again and re-send what the server
lacks) and an audit entry, and only then swapped in (store/restore.py): at once from the command
line (server stopped, folder lock held), at the next start when staged from the web page while the
server runs (the store is open in the process, so nothing is replaced under it).

On PostgreSQL the command replaces the database's documents with the checked backup in one
transaction (store/migrate.py `replace_database`); the admin page refuses there (several servers
share the database, so "at the next start" means nothing): use the command.
"""

import os
import secrets
import shutil
import tarfile

from server.core.clock import now, now_iso, zone
from server.core.problems import Problem
from server.records import audit, epochs
from server.records.layout import tally
from server.store import Store, get_store, store_layout, uses_database
from server.store import restore as folder_restore
from server.store.restore import BackupUnusable, check_folder

MAX_MEMBERS = 2_000_000  # entries an archive may hold (a county's attachments fit many times)


def refuse(zh, en):
    return Problem("backup_unusable", reason_zh=zh, reason_en=en)


def stamp():
    return now().astimezone(zone()).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _unpack(archive, into):
    """The one folder a backup archive holds, unpacked safely (no links out, no absolute paths)."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = []
            for i, m in enumerate(tar):
                if i >= MAX_MEMBERS:
                    raise refuse("备份文件中的条目过多。", "the archive holds too many entries.")
                members.append(m)
            tops = {m.name.lstrip("./").split("/")[0] for m in members if m.name.strip("./")}
            if len(tops) != 1:
                raise refuse("备份文件应只包含一个文件夹。", "the archive should hold exactly one folder.")
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise refuse(f"无法解压：{str(e)[:200]}", f"it cannot be unpacked: {str(e)[:200]}") from None
    return os.path.join(into, tops.pop())


def stage(source, config, *, actor, where):
    """Unpack or copy `source` into a staging folder in the data folder, check it, and start the
    new epoch in it: (staged folder, its work folder to remove afterwards, summary). Problem
    `backup_unusable` (nothing changed) when the backup cannot be used."""
    data_dir = config["DATA_DIR"]
    layout = store_layout()
    work = os.path.join(data_dir, f".restore-{stamp()}")
    os.makedirs(work)
    try:
        staged = os.path.join(work, "data")
        if os.path.isdir(source):
            if not os.path.isfile(os.path.join(source, "core.json")):
                raise refuse("其中没有 core.json（不是本系统的备份文件夹）。",
                             "it holds no core.json (not a backup folder of this system).")
            ignore = shutil.ignore_patterns("lock", "backups", "restore-pending", ".restore-*",
                                            "before-restore-*", "*.log.tmp", "server-*.log")
            shutil.copytree(source, staged, ignore=ignore)
        elif os.path.isfile(source):
            os.rename(_unpack(source, os.path.join(work, "unpacked")), staged)
        else:
            raise refuse("找不到该备份。", "no such backup file or folder.")
        try:
            summary = check_folder(staged, layout, tally)
        except BackupUnusable as e:
            raise refuse(e.zh, e.en) from None
        if not summary.pop("admins", 0):
            raise refuse("其中没有管理员账号。", "it holds no administrator account.")
        name = os.path.basename(os.path.normpath(source))
        store = Store(staged, layout=layout, snapshot_every=0).open()
        try:
            def write(tx):
                doc = epochs.start_new(tx, "restore", backup=name)
                audit.record(tx, actor, "restore", name, {"epoch": doc["epoch"], "via": where,
                                                          "seq": summary["seq"]})
                return doc
            summary["epoch"] = store.write(write)["epoch"]
        finally:
            store.close()
        summary["backup"] = name
        summary["staged_at"] = now_iso()
        return staged, work, summary
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


# ---- the admin page (the server runs: a checked restore waits for the next start) ---------------


def page_status(config):
    """What /admin/backup shows about restores: possible here, one staged, who came back since."""
    return {"restore_possible": not uses_database(config),
            "pending_restore": folder_restore.pending_info(config["DATA_DIR"]),
            "epoch": epochs.who_came_back()}


def upload_path(config):
    """Where an uploaded archive is kept while it is checked (removed afterwards)."""
    return os.path.join(config["DATA_DIR"], f".restore-upload-{stamp()}.tar.gz")


def stage_for_next_start(config, source, *, actor, label):
    """Check `source` and stage it in restore-pending/ (it replaces the data at the next start);
    the staging is audited in the running data. Returns the summary."""
    if uses_database(config):
        raise Problem("restore_on_database")
    staged, work, summary = stage(source, config, actor=actor, where="web")
    summary["backup"] = label
    try:
        folder_restore.stage_pending(config["DATA_DIR"], staged, dict(summary, by=actor, stamp=stamp()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    get_store().write(lambda tx: audit.record(tx, actor, "restore_staged", label,
                                              {"epoch": summary["epoch"], "seq": summary["seq"]}))
    return summary


def cancel_staged(config):
    folder_restore.cancel_pending(config["DATA_DIR"])


def into_database(config, source, *, actor, echo):
    """The command on PostgreSQL: check `source`, start the new epoch in it, and replace the
    database's documents with it in one transaction. Returns the summary."""
    from server.store.migrate import replace_database
    staged, work, summary = stage(source, config, actor=actor, where="cli")
    try:
        ok = replace_database(staged, config["DATABASE_URL"], echo, store_layout(),
                              files_dir=config.get("FILES_DIR"), stamp=stamp())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        raise refuse("复制到数据库后数量不符，数据库未改变。",
                     "the counts in the database did not match the backup; the database is unchanged.")
    return summary
