"""`jiedui ...` and `python -m server ...`: the same commands as `flask --app server ...`, for an
installed copy, where there is no checkout to run `flask --app server` from."""

from flask.cli import FlaskGroup


def _create_app():
    from . import create_app
    return create_app()


cli = FlaskGroup(name="jiedui", create_app=_create_app, help=(
    "结对帮扶服务器的命令，与 `flask --app server ...` 相同。\n\n"
    "Jiedui's commands, the same as `flask --app server ...`."))
# The app is fixed, so FlaskGroup's --app would be silently ignored: offer it not at all.
cli.params = [p for p in cli.params if p.name != "app"]


def main():
    cli.main()


if __name__ == "__main__":
    main()
