"""Autovacuum settings for the task table on PostgreSQL (nothing on other databases);
taskmill/queue/table_settings.py says why."""

from django.db import migrations

from taskmill.queue.table_settings import apply_table_settings, reset_table_settings


class Migration(migrations.Migration):
    dependencies = [
        ("taskmill", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(apply_table_settings, reset_table_settings, elidable=False),
    ]
