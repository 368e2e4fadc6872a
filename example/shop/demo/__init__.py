"""The demo's parts: the tour (what to enqueue and expect), a worker process, a watcher that
narrates results as they change, and the guide that runs it all."""
