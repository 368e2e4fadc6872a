"""The index class models use for the queue's hot paths; it lives here because it is the one
place outside the dialect modules where a database's abilities change the SQL."""

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.ddl_references import Statement
from django.db.models import Index, Model


class PartialIndex(Index):
    """A partial index where the database has them; elsewhere a full index with the condition's
    column first, so the query it serves still finds its rows by index, not by table scan.

    Django silently creates nothing for a conditional index on MySQL/MariaDB; a claim query
    without its index degrades to a scan of every finished row.
    """

    def __init__(self, *args: Any, fallback_prefix: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fallback_prefix = tuple(fallback_prefix)

    def deconstruct(self) -> Any:
        path, args, kwargs = super().deconstruct()
        kwargs["fallback_prefix"] = self.fallback_prefix
        return path, args, kwargs

    def check(self, model: type[Model], connection: Any) -> list[Any]:
        # models.W037 warns that MySQL drops the condition; create_sql below handles that.
        return [error for error in super().check(model, connection) if error.id != "models.W037"]

    def _full_index(self) -> Index:
        return Index(
            fields=[*self.fallback_prefix, *self.fields],
            name=self.name,
            db_tablespace=self.db_tablespace,
        )

    def create_sql(
        self,
        model: type[Model],
        schema_editor: BaseDatabaseSchemaEditor,
        using: str = "",
        **kwargs: Any,
    ) -> Statement:
        if schema_editor.connection.features.supports_partial_indexes:
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        return self._full_index().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(
        self,
        model: type[Model],
        schema_editor: BaseDatabaseSchemaEditor,
        **kwargs: Any,
    ) -> str:
        if schema_editor.connection.features.supports_partial_indexes:
            return super().remove_sql(model, schema_editor, **kwargs)
        return self._full_index().remove_sql(model, schema_editor, **kwargs)
