"""Villages (owner): the registry of villages and who may see which."""

from ..store import CORE, get_store

TABLE = "villages"


def list_all(db=None):
    return sorted((db or get_store()).search(CORE, TABLE), key=lambda v: v["id"])


def get(village_id, db=None):
    if not isinstance(village_id, str) or not village_id:
        return None
    return (db or get_store()).get(CORE, TABLE, village_id)


def in_scope(user, db=None):
    """The villages `user` may see (every one for an admin), by id."""
    scope = user.village_scope()
    villages = list_all(db)
    if scope is not None:
        villages = [v for v in villages if v["id"] in scope]
    return villages


def get_in_scope(user, village_id, db=None):
    """The village if it exists and the user may see it; None alike for absent and out of scope."""
    if not isinstance(village_id, str) or not user.can_see_village(village_id):
        return None
    return get(village_id, db)


def ids_in_scope(user, db=None, village_id=None):
    """Ids of the villages in scope (or just `village_id`, when it is in scope)."""
    ids = [v["id"] for v in in_scope(user, db)]
    if village_id is not None:
        ids = [v for v in ids if v == village_id]
    return ids


def put(tx, village):
    """Add a village record (demo data and tests; `village create` comes with the admin pages)."""
    tx.put(CORE, TABLE, village)
