"""Command-line tools: a thin layer over the same domain functions the server uses."""

import os
import shutil
import sys

import click

from .store import StoreLocked, open_for_command, open_readonly


def init_app(app):
    from . import printing, roster

    @app.cli.command("init")
    @click.option("--demo", is_flag=True, help="Add demo villages, households and users.")
    def init_command(demo):
        """Create the data folder (and demo data)."""
        from . import demo as demo_data
        with open_for_command(app) as store:
            if demo:
                from .records import villages
                if villages.list_all(store):
                    click.echo("数据目录已有数据，未重复导入演示数据。The data folder already has data; "
                               "demo data not loaded again.")
                else:
                    from . import formdefs
                    demo_data.load_demo(store, formdefs.registry(app), formdefs.served_settings(app))
                    click.echo("已导入演示数据。Demo data loaded.")
                print_logins()
        click.echo(f"数据目录 Data folder: {app.config['DATA_DIR']}")

    @app.cli.command("user")
    @click.argument("action", type=click.Choice(["create"]))
    @click.argument("name")
    @click.option("--role", type=click.Choice(["cadre", "supervisor", "admin"]), required=True)
    @click.option("--village", "villages", multiple=True, help="Village id (repeatable).")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    @click.option("--display-name", default=None)
    @click.option("--unit", default="", help="Sending unit (派出单位).")
    def user_command(action, name, role, villages, password_stdin, display_name, unit):
        """Create a user: user create NAME --role cadre|supervisor|admin [--village ID ...]."""
        from .records.users import create as create_user
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
        with open_for_command(app) as store:
            doc, errors = create_user(name, role, password, villages=villages, store=store,
                                      display_name=display_name, unit=unit, actor="cli")
        if errors:
            for zh, en in errors:
                click.echo(f"错误：{zh} / Error: {en}", err=True)
            sys.exit(1)
        click.echo(f"已创建用户 Created user {doc['id']} ({role})")

    app.cli.add_command(roster.import_roster_command)
    app.cli.add_command(printing.print_profiles_command)

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1")
    @click.option("--port", default=5000, type=int)
    @click.option("--threads", default=8, type=int)
    def serve_command(host, port, threads):
        """Serve with waitress (threaded). Ready when GET /api/v1/csrf answers."""
        import signal
        import waitress
        from .store import close_app_store, get_store
        try:
            get_store(app)  # take the folder lock now, so a second server fails fast and clearly
        except StoreLocked as e:
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
        store = open_readonly(app.config["DATA_DIR"])
        store.export_to(out)
        src = os.path.join(app.config["DATA_DIR"], "attachments")
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(out, "attachments"), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.part*"))
        for extra in ("secret_key",):
            p = os.path.join(app.config["DATA_DIR"], extra)
            if os.path.exists(p):
                shutil.copy2(p, os.path.join(out, extra))
        forms_archive = os.path.join(app.config["DATA_DIR"], "forms")
        if os.path.isdir(forms_archive):
            shutil.copytree(forms_archive, os.path.join(out, "forms"), dirs_exist_ok=True)
        click.echo(f"备份完成 Backup written to {out} (seq {store.seq})")


def print_logins():
    from .demo import DEMO_LOGINS
    click.echo("演示账号 Demo logins:")
    for username, password, role in DEMO_LOGINS:
        click.echo(f"  {role:<10} {username:<12} {password}")
