"""Every vacuum of the task table cleans its indexes, on PostgreSQL (nothing on other
databases); taskmill/queue/table_settings.py says why."""

from django.db import migrations

from taskmill.queue.table_settings import apply_index_cleanup, reset_index_cleanup


class Migration(migrations.Migration):
    dependencies = [
        ("taskmill", "0002_task_table_autovacuum"),
    ]

    operations = [
        migrations.RunPython(apply_index_cleanup, reset_index_cleanup, elidable=False),
    ]
