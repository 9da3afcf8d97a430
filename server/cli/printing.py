"""`flask --app server print-profiles --village ID -o OUT.pdf`: a village's profiles in one PDF, with
a progress bar; it only reads, so it works beside a running server."""

import os

import click
from flask import current_app
from flask.cli import with_appcontext

from server import printing
from server.printing.jobs import shutdown_pools
from server.printing.profile import LANGS
from server.records import households, villages
from server.store import open_readonly

@click.command("print-profiles")
@click.option("--village", "village_id", required=True, help="Village id (村编号).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The PDF to write.")
@click.option("--lang", type=click.Choice(LANGS), default="zh", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: PRINT_WORKERS, at most 2).")
@click.option("--show-phones", is_flag=True, help="Print phone numbers unmasked (admin use).")
@click.option("--by", "printed_by", default=None, help="Name printed in the footer.")
@with_appcontext
def print_profiles_command(village_id, output, lang, workers, show_phones, printed_by):
    """Print every household profile of a village into one PDF (reads the data, never locks it)."""
    app = current_app._get_current_object()
    store = open_readonly(app)
    try:
        if not villages.get(village_id, store):
            raise click.ClickException(f"未知的村 {village_id}。Unknown village {village_id}.")
        total = households.count_in_village(village_id, store)
        if not total:
            raise click.ClickException(f"村 {village_id} 没有农户。Village {village_id} has no households.")
        if not printed_by:
            import getpass
            try:
                printed_by = getpass.getuser()
            except Exception:
                printed_by = "cli"
        with click.progressbar(length=total, label=f"打印 Printing {village_id}",
                               show_pos=True) as bar:
            def progress(done, _total):
                bar.update(done - bar.pos)
            summary = printing.print_village_to(
                app, village_id, os.path.abspath(output), lang=lang, mask=not show_phones,
                printed_by=printed_by, workers=workers, progress=progress, store=store)
    finally:
        store.close()
        shutdown_pools()
    for err in summary["errors"]:
        click.echo(f"失败 Failed {err['household_id']}: {err['message']}", err=True)
    if not summary["out_path"]:
        raise click.ClickException("没有生成任何档案。No profile could be printed.")
    click.echo(f"已写入 Wrote {output}: {summary['total'] - len(summary['errors'])} 户 households "
               f"({summary['cache_hits']} 来自缓存 from cache, {summary['rendered']} 新生成 rendered)")
    if summary["errors"]:
        raise SystemExit(1)
