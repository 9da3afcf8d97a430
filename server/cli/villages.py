"""`flask --app server village create ID --name NAME [--township T] [--county C]` and `village
update`: the command-line twins of /admin/villages. They write, so they take the folder lock."""

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.common import fail as _fail
from server.records import villages
from server.store import open_for_command


@click.group("village")
def village_group():
    """村 / villages: create, update."""


@village_group.command("create")
@click.argument("village_id", metavar="ID")
@click.option("--name", required=True, help="村名 / village name")
@click.option("--township", default="", help="乡镇 / township")
@click.option("--county", default="", help="县 / county")
@with_appcontext
def create_command(village_id, name, township, county):
    """Create a village: village create ID --name NAME [--township T] [--county C]."""
    with open_for_command(current_app._get_current_object()) as store:
        doc, errors = villages.create(village_id, name=name, township=township, county=county,
                                      actor="cli", store=store)
    if errors:
        _fail(errors)
    click.echo(f"已创建村 Created village {doc['id']} ({doc['name']})")


@village_group.command("update")
@click.argument("village_id", metavar="ID")
@click.option("--name", default=None)
@click.option("--township", default=None)
@click.option("--county", default=None)
@click.option("--publicity-days", default=None, help="公示天数 the land ledger notice's period, 1-60")
@with_appcontext
def update_command(village_id, name, township, county, publicity_days):
    """Rename a village, change its township or county, or its publicity period (公示天数)."""
    fields = {k: v for k, v in (("name", name), ("township", township), ("county", county),
                                ("publicity_days", publicity_days)) if v is not None}
    with open_for_command(current_app._get_current_object()) as store:
        doc, errors = villages.update(village_id, actor="cli", store=store, **fields)
    if errors:
        _fail(errors)
    if doc is None:
        _fail([{"zh": f"没有村 {village_id}", "en": f"No village {village_id}"}])
    click.echo(f"已更新村 Updated village {doc['id']} ({doc['name']})")
