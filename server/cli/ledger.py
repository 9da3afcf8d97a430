"""`flask --app server import-ledger FILE [FILE ...] --village ID [--confirm]`: the command-line twin
of /admin/ledger. Without --confirm it only previews (nothing written); either way it prints the
report as JSON (DESIGN, turn 3) and exits 1 when the file has any error."""

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from server.services import ledger
from server.store import open_for_command, open_readonly


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(ledger.MAX_BYTES + 1)
    except OSError as e:
        raise click.ClickException(f"无法读取 Cannot read {path}: {e.strerror}")


@click.command("import-ledger")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--village", "village_id", required=True, help="村编号 / village id")
@click.option("--confirm", is_flag=True, help="写入（默认只预览）/ write (default: preview only)")
@click.option("--take", multiple=True, metavar="HOUSEHOLD:FIELD",
              help="冲突时采用文件中的值 / on a clash, take the file's value (repeatable)")
@click.option("--actor", default="cli", show_default=True, help="记入审计日志的用户 / user named in the audit log")
@with_appcontext
def import_ledger_command(files, village_id, confirm, take, actor):
    """导入土地承包台账（XLSX 或 CSV）/ Import a land ledger (XLSX or CSVs); preview unless --confirm."""
    app = current_app._get_current_object()
    data = [(path, _read(path)) for path in files]
    if confirm:
        with open_for_command(app, page="/admin/ledger") as store:
            report, _work = ledger.run(village_id, data, actor=actor, confirm=True, take=take, store=store)
    else:
        store = open_readonly(app)
        try:
            report, _work = ledger.run(village_id, data, actor=actor, confirm=False, take=take, store=store)
        finally:
            store.close()
    click.echo(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    if report["errors"]:
        click.echo(f"导入失败，未写入任何数据（{len(report['errors'])} 处错误）。"
                   f" Import failed; nothing was written ({len(report['errors'])} error(s)).", err=True)
        sys.exit(1)
