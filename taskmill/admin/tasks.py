"""Admin for task results."""
