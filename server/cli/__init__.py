"""Command-line tools: a thin layer over the same domain functions the server uses."""

import os
import sys

import click

from server.store import StoreLocked
from server.store import SchemaTooNew, StoreUnavailable
from server.store import open_for_command, open_readonly

USERS_PAGE = "/admin/users"


def init_app(app):
    from server import printing
    from server.services import roster

    @app.cli.command("init")
    @click.option("--demo", is_flag=True, help="Add demo villages, households and users.")
    def init_command(demo):
        """Create the data folder (and demo data)."""
        from server.services import demo as demo_data
        with open_for_command(app) as store:
            if demo:
                from server.records import villages
                if villages.list_all(store):
                    click.echo("数据目录已有数据，未重复导入演示数据。The data folder already has data; "
                               "demo data not loaded again.")
                else:
                    from server.forms import formdefs
                    demo_data.load_demo(store, formdefs.registry(app), formdefs.served_settings(app))
                    click.echo("已导入演示数据。Demo data loaded.")
                print_logins()
        click.echo(f"数据目录 Data folder: {app.config['DATA_DIR']}")

    @app.cli.group("user")
    def user_group():
        """Accounts: create, set-password, deactivate, activate, set-villages."""

    def finish(doc, errors, done_text):
        if errors:
            for e in errors:
                click.echo(f"错误：{e['zh']} / Error: {e['en']}", err=True)
            sys.exit(1)
        click.echo(done_text)

    def read_password(password_stdin):
        if password_stdin:
            return sys.stdin.readline().rstrip("\n")
        return click.prompt("密码 Password", hide_input=True, confirmation_prompt=True)

    @user_group.command("create")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["cadre", "supervisor", "admin"]), required=True)
    @click.option("--village", "villages", multiple=True, help="Village id (repeatable).")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    @click.option("--display-name", default=None)
    @click.option("--unit", default="", help="Sending unit (派出单位).")
    @click.option("--phone", default="", help="An 11-digit mobile.")
    def user_create(name, role, villages, password_stdin, display_name, unit, phone):
        """Create a user: user create NAME --role cadre|supervisor|admin [--village ID ...]."""
        from server.records.users import create as create_user
        password = read_password(password_stdin)
        with open_for_command(app, page=USERS_PAGE) as store:
            doc, errors = create_user(name, role, password, villages=villages, store=store,
                                      display_name=display_name, unit=unit, phone=phone, actor="cli")
        finish(doc, errors, f"已创建用户 Created user {doc['id']} ({role})" if doc else "")

    @user_group.command("set-password")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    def user_set_password(name, password_stdin):
        """A new password; every session of the user ends (a lost phone is locked out)."""
        from server.records import users
        password = read_password(password_stdin)
        with open_for_command(app, page=USERS_PAGE) as store:
            doc, errors = users.set_password(name, password, actor="cli", db=store)
        finish(doc, errors, f"已修改密码，该用户的所有登录已失效。Password changed for {name}; "
                            "every session of that user has ended.")

    @user_group.command("deactivate")
    @click.argument("name")
    def user_deactivate(name):
        """The user can no longer log in; every session ends at once."""
        from server.records import users
        with open_for_command(app, page=USERS_PAGE) as store:
            doc, errors = users.deactivate(name, actor="cli", db=store)
        finish(doc, errors, f"已停用 {name}，其所有登录已失效。Deactivated {name}; every session has ended.")

    @user_group.command("activate")
    @click.argument("name")
    def user_activate(name):
        """The user may log in again (with their password)."""
        from server.records import users
        with open_for_command(app, page=USERS_PAGE) as store:
            doc, errors = users.activate(name, actor="cli", db=store)
        finish(doc, errors, f"已启用 {name}。Activated {name}.")

    @user_group.command("set-villages")
    @click.argument("name")
    @click.option("--village", "villages", multiple=True, help="Village id (repeatable; none: no village).")
    def user_set_villages(name, villages):
        """The villages the user works in; every session of the user ends (the scope changed)."""
        from server.records import users
        with open_for_command(app, page=USERS_PAGE) as store:
            doc, errors = users.set_villages(name, list(villages), actor="cli", db=store)
        shown = ", ".join(doc["villages"]) if doc else ""
        finish(doc, errors, f"{name} 负责的村 villages: {shown or '-'}")

    app.cli.add_command(roster.import_roster_command)
    from server.cli.ledger import import_ledger_command
    app.cli.add_command(import_ledger_command)
    from server.cli.villages import village_group
    app.cli.add_command(village_group)
    app.cli.add_command(printing.print_profiles_command)

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1")
    @click.option("--port", default=5000, type=int)
    @click.option("--threads", default=8, type=int)
    def serve_command(host, port, threads):
        """Serve with waitress (threaded). Ready when GET /api/v1/csrf answers."""
        import signal
        import waitress
        from server.store import close_app_store, get_store
        try:
            get_store(app)  # take the folder lock now, so a second server fails fast and clearly
        except (StoreLocked, StoreUnavailable, SchemaTooNew) as e:
            raise click.ClickException(str(e))

        def stop(signum, frame):
            close_app_store(app)
            os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"Jiedui serving on http://{host}:{port}  (数据 data: {app.config['DATA_DIR']})")
        waitress.serve(app, host=host, port=port, threads=threads, ident="jiedui",
                       max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 4096)

    @app.cli.command("backup")
    @click.argument("out", type=click.Path(file_okay=False))
    def backup_command(out):
        """A consistent copy of the data folder, safe while the server runs."""
        if os.path.exists(out) and os.listdir(out):
            raise click.ClickException(f"{out} 不是空目录 is not an empty folder")
        from server.services.backup import write_folder
        store = open_readonly(app)
        try:
            seq = write_folder(store, app.config, out)
        finally:
            store.close()
        click.echo(f"备份完成 Backup written to {out} (seq {seq})")

    @app.cli.command("migrate")
    @click.option("--to", "url", required=True, help="postgresql://... : the database to copy into.")
    def migrate_command(url):
        """Copy this TinyDB data folder into PostgreSQL (idempotent, resumable, counts checked)."""
        from server.store.migrate import migrate
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


def print_logins():
    from server.services.demo import DEMO_LOGINS
    click.echo("演示账号 Demo logins:")
    for username, password, role in DEMO_LOGINS:
        click.echo(f"  {role:<10} {username:<12} {password}")
