"""The index and constraint classes the task table uses to keep its writes cheap; they live
here because this is the one place outside the dialect modules where a database's abilities
change the SQL."""

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.ddl_references import Statement
from django.db.models import Index, Model, UniqueConstraint


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


class PartialUnique(UniqueConstraint):
    """A unique index over the rows that have a value, where the database has partial indexes;
    elsewhere a unique constraint over every row.

    Only for a condition that NULLs alone fail (`column IS NOT NULL`, the column one of the
    constraint's): NULLs never collide, so both forms enforce the same rule. The partial one is
    the cheaper: most task rows have no unique key or schedule, and a row the condition leaves
    out costs no index entry when it is inserted or updated.
    """

    def check(self, model: type[Model], connection: Any) -> list[Any]:
        # models.W036 warns that MySQL ignores the condition; the methods below handle that.
        return [error for error in super().check(model, connection) if error.id != "models.W036"]

    def _whole(self) -> UniqueConstraint:
        return UniqueConstraint(fields=self.fields, name=self.name)

    @staticmethod
    def _partial(schema_editor: BaseDatabaseSchemaEditor | None) -> bool:
        return schema_editor is None or schema_editor.connection.features.supports_partial_indexes

    def constraint_sql(
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> str:
        if self._partial(schema_editor):
            return super().constraint_sql(model, schema_editor)
        return self._whole().constraint_sql(model, schema_editor)

    def create_sql(
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> str:
        if self._partial(schema_editor):
            return super().create_sql(model, schema_editor)
        return self._whole().create_sql(model, schema_editor)

    def remove_sql(
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> str:
        if self._partial(schema_editor):
            return super().remove_sql(model, schema_editor)
        return self._whole().remove_sql(model, schema_editor)
