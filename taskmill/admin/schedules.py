"""Admin for schedules and workers."""
