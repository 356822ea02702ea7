"""Rows read by hand-written SQL, made into model instances as the ORM makes them.

For the few statements on the path of every round that are written once instead of compiled by
the ORM each time (see :func:`sessions_app.engine.runner.claims_take`): a ``SELECT`` of a model's
columns with its related rows joined in, and the instances built from its rows with the
converters the ORM's compiler would apply.
"""

from __future__ import annotations


def joined_select(connection_, rows, source: str) -> str:
    """``SELECT`` every column of ``rows`` from ``source`` (aliased ``t0``), each related row
    outer-joined by its foreign key. ``rows``: ``[(model, None), (related model, name of the
    first model's foreign key to it), ...]``, the first model first."""
    quote = connection_.ops.quote_name
    first = rows[0][0]
    columns, joins = [], []
    for i, (model, name) in enumerate(rows):
        columns += [f"t{i}.{quote(f.column)}" for f in model._meta.concrete_fields]
        if name is not None:
            fk = first._meta.get_field(name)
            joins.append(
                f"LEFT JOIN {quote(model._meta.db_table)} AS t{i} ON t{i}.{quote(fk.target_field.column)} = t0.{quote(fk.column)}"
            )
    return f"SELECT {', '.join(columns)} FROM {source} AS t0 {' '.join(joins)}"  # noqa: S608 - the models' own names


def joined_instance(row: tuple, rows, connection_):
    """The first row's model instance from a row of :func:`joined_select`, with its related rows attached."""
    at, instances = 0, []
    for model, _ in rows:
        width = len(model._meta.concrete_fields)
        instances.append(instance_from_row(model, row[at : at + width], connection_))
        at += width
    first = instances[0]
    for (_, name), instance in zip(rows[1:], instances[1:], strict=True):
        first._meta.get_field(name).set_cached_value(first, instance)
    return first


def instance_from_row(model, values, connection_):
    """A model instance from its row's columns (in ``concrete_fields`` order), converted by the
    converters the ORM's compiler applies to them; None for a row of NULLs (an outer join that
    found nothing)."""
    if values[0] is None:
        return None
    values = list(values)
    for i, converters, column in _converters(model, connection_):
        for convert in converters:
            values[i] = convert(values[i], column, connection_)
    return model.from_db(connection_.alias, [f.attname for f in model._meta.concrete_fields], values)


_converters_of: dict[tuple[str, type], list] = {}  # (vendor, model) -> [(position, converters, column)]


def _converters(model, connection_) -> list:
    """The converters of each of the model's columns that has any, as the compiler gathers them
    (the backend's, then the field's), built once per process."""
    key = (connection_.vendor, model)
    if key not in _converters_of:
        found = []
        for i, f in enumerate(model._meta.concrete_fields):
            column = f.get_col(model._meta.db_table)
            converters = connection_.ops.get_db_converters(column) + column.get_db_converters(connection_)
            if converters:
                found.append((i, converters, column))
        _converters_of[key] = found
    return _converters_of[key]
