"""`flask --app server restore BACKUP`: replace the data with a backup, the server stopped (on
PostgreSQL: the database's documents, in one transaction)."""

import os
import shutil
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from server.core.problems import Problem
from server.store import StoreLocked, store_layout


@click.command("restore")
@click.argument("backup", type=click.Path(exists=True))
@with_appcontext
def restore_command(backup):
    """Replace the data with a backup (a folder from `backup OUT`, or the /admin/backup tar.gz).
    The server must be stopped; the backup is checked first; phones re-send what it lacks."""
    from server.services.restore import stage, stamp
    from server.store.restore import cancel_pending, folder_lock, swap_in
    app = current_app._get_current_object()

    def fail(problem):
        click.echo(f"错误：{problem.zh}\nError: {problem.en}", err=True)
        sys.exit(1)

    data_dir = app.config["DATA_DIR"]
    if app.config.get("DATABASE_URL"):
        from server.services.restore import into_database
        try:
            summary = into_database(app.config, os.path.abspath(backup), actor="cli", echo=lambda text: None)
        except Problem as e:
            fail(e)
        click.echo(f"已从备份恢复数据库 Restored the database from {summary['backup']}: {summary['villages']} 村 "
                   f"villages, {summary['households']} 户 households, {summary['submissions']} 条记录 "
                   f"submissions. 新的数据纪元 New data epoch: {summary['epoch']}.")
        return
    try:
        with folder_lock(data_dir):
            staged, work, summary = stage(os.path.abspath(backup), app.config, actor="cli", where="cli")
            try:
                aside = swap_in(data_dir, app.config.get("FILES_DIR"), staged, stamp(), store_layout(app))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            cancel_pending(data_dir)  # one staged on the web page earlier is superseded
    except StoreLocked:
        fail(Problem("restore_needs_stop"))
    except Problem as e:
        fail(e)
    click.echo(f"已从备份恢复 Restored from {summary['backup']}: {summary['villages']} 村 villages, "
               f"{summary['households']} 户 households, {summary['submissions']} 条记录 submissions "
               f"(seq {summary['seq']}).")
    click.echo(f"新的数据纪元 New data epoch: {summary['epoch']} — 手机下次同步时会重新下载全部数据，并补发"
               f"服务器缺少的记录和照片。Phones pull everything again at their next sync and re-send "
               f"what the server lacks.")
    click.echo(f"恢复前的数据已移到 The data before the restore was moved to: {aside}")
