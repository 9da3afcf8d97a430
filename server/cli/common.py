"""What every command shares: reporting errors in both languages, reading a password."""

import sys

import click


def fail(errors):
    """Each error on standard error in Chinese and English, then exit status 1."""
    for e in errors:
        click.echo(f"错误：{e['zh']} / Error: {e['en']}", err=True)
    sys.exit(1)


def finish(doc, errors, done_text):
    if errors:
        fail(errors)
    click.echo(done_text)


def read_password(password_stdin):
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
