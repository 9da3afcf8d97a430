"""`flask --app server user create|set-password|deactivate|activate|set-villages`: the
command-line twins of /admin/users. They write, so they take the folder lock."""

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.common import finish, read_password
from server.records import users
from server.store import open_for_command

USERS_PAGE = "/admin/users"


def _open():
    return open_for_command(current_app._get_current_object(), page=USERS_PAGE)


@click.group("user")
def user_group():
    """Accounts: create, set-password, deactivate, activate, set-villages."""


@user_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["cadre", "supervisor", "admin"]), required=True)
@click.option("--village", "villages", multiple=True, help="Village id (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--display-name", default=None)
@click.option("--unit", default="", help="Sending unit (派出单位).")
@click.option("--phone", default="", help="An 11-digit mobile.")
@with_appcontext
def user_create(name, role, villages, password_stdin, display_name, unit, phone):
    """Create a user: user create NAME --role cadre|supervisor|admin [--village ID ...]."""
    password = read_password(password_stdin)
    with _open() as store:
        doc, errors = users.create(name, role, password, villages=villages, store=store,
                                   display_name=display_name, unit=unit, phone=phone, actor="cli")
    finish(doc, errors, f"已创建用户 Created user {doc['id']} ({role})" if doc else "")


@user_group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def user_set_password(name, password_stdin):
    """A new password; every session of the user ends (a lost phone is locked out)."""
    password = read_password(password_stdin)
    with _open() as store:
        doc, errors = users.set_password(name, password, actor="cli", db=store)
    finish(doc, errors, f"已修改密码，该用户的所有登录已失效。Password changed for {name}; "
                        "every session of that user has ended.")


@user_group.command("deactivate")
@click.argument("name")
@click.option("--erase-phones", is_flag=True,
              help="Also ask the user's phones to send what is unsent, then erase themselves.")
@with_appcontext
def user_deactivate(name, erase_phones):
    """The user can no longer log in; every session ends at once."""
    with _open() as store:
        doc, errors = users.deactivate(name, actor="cli", erase_phones=erase_phones, db=store)
    note = (" 其手机下次联网时将先发出未发送的记录再清除数据。Their phones will send what is unsent, "
            "then erase themselves, at their next contact.") if erase_phones else ""
    finish(doc, errors, f"已停用 {name}，其所有登录已失效。Deactivated {name}; every session has ended.{note}")


@user_group.command("activate")
@click.argument("name")
@with_appcontext
def user_activate(name):
    """The user may log in again (with their password)."""
    with _open() as store:
        doc, errors = users.activate(name, actor="cli", db=store)
    finish(doc, errors, f"已启用 {name}。Activated {name}.")


@user_group.command("set-villages")
@click.argument("name")
@click.option("--village", "villages", multiple=True, help="Village id (repeatable; none: no village).")
@with_appcontext
def user_set_villages(name, villages):
    """The villages the user works in; every session of the user ends (the scope changed)."""
    with _open() as store:
        doc, errors = users.set_villages(name, list(villages), actor="cli", db=store)
    shown = ", ".join(doc["villages"]) if doc else ""
    finish(doc, errors, f"{name} 负责的村 villages: {shown or '-'}")


@user_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and print the preview; write nothing.")
@click.option("--slips", "slips_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the login slips (PDF) of the accounts created.")
@with_appcontext
def user_import(path, dry_run, slips_path):
    """Accounts from an XLSX or CSV sheet (username, name, role, villages, mobile, sending unit).
    Prints a JSON report with each account's one-time password; any error: exit 1, nothing written."""
    import json

    from server.services import user_import as importer
    try:
        with open(path, "rb") as f:
            data = f.read(importer.MAX_BYTES + 1)
    except OSError as e:
        raise click.ClickException(f"无法读取文件 Cannot read the file: {e.strerror}")
    with _open() as store:
        report = importer.run(path, data, actor="cli", confirm=not dry_run, db=store)
    shown = {"accounts" if dry_run else "created": report["accounts"] if dry_run else report["created"],
             "errors": report["errors"]}
    click.echo(json.dumps(shown, ensure_ascii=False, indent=1))
    if report["errors"]:
        sys.exit(1)
    if slips_path and report["created"]:
        from server.printing import slips
        pdf = slips.render_slips_pdf(report["created"], slips.app_url(current_app))
        with open(slips_path, "wb") as f:
            f.write(pdf)
        click.echo(f"登录条 Login slips: {slips_path}", err=True)
