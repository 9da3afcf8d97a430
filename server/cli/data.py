"""`flask --app server init [--demo]`, `backup OUT` and `migrate --to URL`: making, copying and
moving a data folder."""

import os

import click
from flask import current_app
from flask.cli import with_appcontext

from server.store import SchemaTooNew, StoreLocked, StoreUnavailable, open_for_command, open_readonly


@click.command("init")
@click.option("--demo", is_flag=True, help="Add demo villages, households and users.")
@with_appcontext
def init_command(demo):
    """Create the data folder (and demo data)."""
    from server.forms import formdefs
    from server.records import villages
    from server.services import demo as demo_data
    app = current_app._get_current_object()
    with open_for_command(app) as store:
        if demo:
            if villages.list_all(store):
                click.echo("数据目录已有数据，未重复导入演示数据。The data folder already has data; "
                           "demo data not loaded again.")
            else:
                demo_data.load_demo(store, formdefs.registry(app), formdefs.served_settings(app))
                click.echo("已导入演示数据。Demo data loaded.")
            print_logins()
    click.echo(f"数据目录 Data folder: {app.config['DATA_DIR']}")


def print_logins():
    from server.services.demo import DEMO_LOGINS
    click.echo("演示账号 Demo logins:")
    for username, password, role in DEMO_LOGINS:
        click.echo(f"  {role:<10} {username:<12} {password}")


@click.command("backup")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--with-secret", is_flag=True,
              help="Include the session key (secret_key): a restore keeps every login.")
@with_appcontext
def backup_command(out, with_secret):
    """A consistent copy of the data folder, safe while the server runs. Without --with-secret the
    session key is left out: a server started on the copy makes a new one (every login ends), and
    a stolen backup signs no session."""
    from server.services.backup import write_folder
    if os.path.exists(out) and os.listdir(out):
        raise click.ClickException(f"{out} 不是空目录 is not an empty folder")
    app = current_app._get_current_object()
    store = open_readonly(app)
    try:
        seq = write_folder(store, app.config, out, with_secret=with_secret)
    finally:
        store.close()
    click.echo(f"备份完成 Backup written to {out} (seq {seq})")


@click.command("migrate")
@click.option("--to", "url", required=True, help="postgresql://... : the database to copy into.")
@with_appcontext
def migrate_command(url):
    """Copy this TinyDB data folder into PostgreSQL (idempotent, resumable, counts checked)."""
    from server.store.migrate import migrate
    app = current_app._get_current_object()
    if not url.startswith(("postgresql://", "postgres://")):
        raise click.ClickException("--to must be a postgresql:// URL")
    click.echo(f"从 From {app.config['DATA_DIR']} 复制到 into PostgreSQL")
    try:
        ok = migrate(app.config["DATA_DIR"], url, click.echo, files_dir=app.config["FILES_DIR"])
    except StoreLocked as e:
        raise click.ClickException(f"{e}\n请先停止 TinyDB 服务器。Stop the TinyDB server first.")
    except (StoreUnavailable, SchemaTooNew, ValueError) as e:
        raise click.ClickException(str(e))
    if not ok:
        raise click.ClickException("数量不符，见上。Counts do not match (see above); run again.")
