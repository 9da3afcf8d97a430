"""`flask --app server import-roster FILE --village ID`: the command-line twin of /admin/roster. It
writes, so it takes the folder lock."""

import click
from flask import current_app
from flask.cli import with_appcontext

from server.services import roster
from server.store import open_for_command


@click.command("import-roster")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--village", "village_id", required=True, help="村编号 / village id")
@click.option("--actor", default="cli", show_default=True, help="记入审计日志的用户 / user named in the audit log")
@with_appcontext
def import_roster_command(file, village_id, actor):
    """导入村花名册（CSV 或 XLSX）/ Import a village roster (CSV or XLSX); safe to repeat."""
    app = current_app._get_current_object()
    with open_for_command(app) as store:
        summary, errors = roster.run_import(store, file, village_id, actor,
                                     app.config.get("MAX_ROSTER_BYTES", roster.MAX_BYTES))
    if errors:
        click.echo(f"导入失败，未写入任何数据（{len(errors)} 处错误）。"
                   f" Import failed; nothing was written ({len(errors)} error(s)).", err=True)
        click.echo(roster.format_errors(errors), err=True)
        raise SystemExit(1)
    click.echo(f"已导入村 {village_id}：新建 {summary['created']} 户，更新 {summary['updated']} 户，"
               f"未变 {summary['unchanged']} 户。 Imported village {village_id}: {summary['created']} "
               f"created, {summary['updated']} updated, {summary['unchanged']} unchanged.")
