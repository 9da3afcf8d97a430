"""Form definitions as data: load and check, conditions, effects, labels."""
