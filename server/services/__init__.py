"""Services: work across record owners (roster, stats, exports, backup, demo, publishing)."""
