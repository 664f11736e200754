"""What the report's queries need beyond plain Core, on SQLite and PostgreSQL alike:
the stores' local calendar day of a stored UTC time, and rows streamed in chunks
(a server-side cursor on PostgreSQL) rather than fetched whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from ledger.timefmt import IRAN_OFFSET

CHUNK_ROWS = 5_000  # rows fetched at a time
_OFFSET_MINUTES = int(IRAN_OFFSET.total_seconds()) // 60


class local_day(FunctionElement[str]):
    """'YYYY-MM-DD': the stores' calendar day of a ledger time (UTC text)."""

    type = String()
    inherit_cache = True
    name = "local_day"


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler: Any, **kw: Any) -> str:
    return f"substr(datetime({compiler.process(element.clauses, **kw)}, '+{_OFFSET_MINUTES} minutes'), 1, 10)"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element: local_day, compiler: Any, **kw: Any) -> str:
    # the text's trailing Z is ignored by a cast to a timestamp without a zone: it is UTC
    return (f"to_char(CAST({compiler.process(element.clauses, **kw)} AS timestamp) "
            f"+ interval '{_OFFSET_MINUTES} minutes', 'YYYY-MM-DD')")


def stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    """The statement's rows, CHUNK_ROWS at a time from the database."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(stmt)
    try:
        yield from result
    finally:
        result.close()
