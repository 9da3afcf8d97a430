"""`flask --app server init [--demo]`, `backup OUT` and `migrate --to URL`: making, copying and
moving a data folder."""

import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.common import fail, read_password
from server.store import (SchemaTooNew, StoreLocked, StoreUnavailable, open_for_command, open_readonly,
                          store_layout)


def on_terminal():
    """Is someone at a terminal to answer questions? (tests replace this)"""
    return sys.stdin.isatty()


@click.command("init")
@click.option("--demo", is_flag=True, help="Add demo villages, households and users.")
@click.option("--admin", "admin_name", default=None, help="The first administrator's username.")
@click.option("--password-stdin", is_flag=True, help="Read the first administrator's password from "
              "standard input (with --admin).")
@with_appcontext
def init_command(demo, admin_name, password_stdin):
    """Create the data folder (and demo data), and the first administrator when there is none:
    asked for on a terminal, taken from --admin NAME --password-stdin, or else made up as `admin`
    with a one-time password printed here."""
    from server.forms import formdefs
    from server.records import villages
    from server.services import demo as demo_data
    if password_stdin and not admin_name:
        raise click.UsageError("--password-stdin 须与 --admin NAME 一起使用 goes with --admin NAME")
    app = current_app._get_current_object()
    with open_for_command(app) as store:
        if demo:
            if villages.list_all(store):
                click.echo("数据目录已有数据，未重复导入演示数据。The data folder already has data; "
                           "demo data not loaded again.")
            else:
                demo_data.load_demo(store, formdefs.registry(app), formdefs.served_settings(app))
                _demo_admin_over_unused_first_admin(store)
                click.echo("已导入演示数据。Demo data loaded.")
            print_logins()
        first_admin(store, admin_name, password_stdin)
    click.echo(f"数据目录 Data folder: {app.config['DATA_DIR']}")


def _demo_admin_over_unused_first_admin(store):
    """`init` then `init --demo`: the made-up first admin, never logged in, becomes the demo's
    admin, so the demo logins printed are true."""
    from server.records import users
    from server.services import demo as demo_data
    doc = users.get(demo_data.ADMIN[0], store)
    if doc and users.must_change_password(doc) and not doc.get("logins") and doc.get("role") == "admin":
        password = dict((u, p) for u, p, _r in demo_data.DEMO_LOGINS)[doc["id"]]
        users.create(doc["id"], "admin", None, display_name=demo_data.ADMIN[1], unit=demo_data.ADMIN[2],
                     actor="system", update=True, store=store, password_hash=users.hash_password(password))


def first_admin(store, name, password_stdin):
    """Make the first administrator unless one exists (init is idempotent), and say what was done."""
    from server.core import passwords
    from server.records import users
    admins = [u["id"] for u in users.list_all(store) if u.get("role") == "admin" and u.get("active", True)]
    if admins:
        click.echo(f"已有管理员 An administrator exists: {', '.join(admins)}"
                   + ("（未新建 not created: " + name + "）" if name and name not in admins else ""))
        return
    one_time = False
    if name or on_terminal():
        if not name:
            name = click.prompt("首个管理员的用户名 First administrator's username", default="admin")
        password = read_password(password_stdin)
    else:
        name, password, one_time = "admin", passwords.one_time(), True
    doc, errors = users.create(name, "admin", password, display_name="管理员", actor="cli",
                               one_time=one_time, store=store)
    if errors:
        fail(errors)
    click.echo(f"已创建首个管理员 First administrator created: {doc['id']}")
    if one_time:
        click.echo(f"一次性密码 One-time password: {password}")
        click.echo("请用它登录网页并立即设置自己的密码（首次登录时必须修改）。Log in on the web with it and "
                   "set your own password (required at first login).")


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
        ok = migrate(app.config["DATA_DIR"], url, click.echo, store_layout(app),
                     files_dir=app.config["FILES_DIR"])
    except StoreLocked as e:
        raise click.ClickException(f"{e}\n请先停止 TinyDB 服务器。Stop the TinyDB server first.")
    except (StoreUnavailable, SchemaTooNew, ValueError) as e:
        raise click.ClickException(str(e))
    if not ok:
        raise click.ClickException("数量不符，见上。Counts do not match (see above); run again.")
