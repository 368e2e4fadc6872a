"""The worker: a supervisor process and the pool of children that run tasks."""
