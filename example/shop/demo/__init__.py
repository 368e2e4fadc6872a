"""The demo's parts: the tour (what to enqueue and expect), a worker process, a watcher that
narrates results as they change (with the live output of long tasks and the schedules' runs),
the summary table, the site's superuser, and the guide that runs it all."""
