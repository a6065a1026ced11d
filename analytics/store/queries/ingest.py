"""The importer's SQL: staging files, checking rows, loading the batch, the import log.

The ingest layer decides what to check and what to say; this module is how DuckDB does it.
Values from the input and the caller (paths, today, limits) are bound parameters; table and
column names and the allowed values come from the format declaration in store/schema.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np

from analytics.store.connection import Session
from analytics.store.schema import BARC10_ITEMS, CODE_PATTERN, EARLIEST_DATE, PARTICIPANTS, Column, Table

FILE_STRIDE = 10**12  # (file, record) -> one sortable BIGINT position

# Control characters and the bidirectional overrides that reorder how text is shown.
CONTROL_PATTERN = r"[\x00-\x1f\x7f\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# ----------------------------------------------------------------- staging ---

# Physical lines of a file, unparsed: one column, a delimiter and quote that never occur.
_LINES = ("read_csv($path, header = false, auto_detect = false, columns = {'line': 'VARCHAR'}, "
          "delim = '\x01', quote = '', escape = '', encoding = 'utf-8', ignore_errors = true)")
_TOO_MANY = """suffix(line, ',') AND length(line) - length(replace(line, ',', '')) > $commas
    AND (NOT contains(line, '"') OR (length(line) - length(replace(line, '"', ''))) % 2 = 0
         AND length(regexp_replace(line, '"([^"]|"")*"', '', 'g'))
           - length(replace(regexp_replace(line, '"([^"]|"")*"', '', 'g'), ',', '')) > $commas)"""


def count_long_lines(db: Session, path: str, columns: int) -> int:
    """Lines with more fields than `columns` whose extra fields are empty (DuckDB drops those)."""
    return int(db.scalar(f"SELECT count(*) FROM {_LINES} WHERE {_TOO_MANY}",
                         {"path": path, "commas": columns - 1}))


def long_line_numbers(db: Session, path: str, columns: int, limit: int) -> list[int]:
    rows = db.rows(f"""SELECT n FROM (SELECT row_number() OVER () AS n, line FROM {_LINES})
                       WHERE n > 1 AND {_TOO_MANY} ORDER BY n LIMIT $limit""",
                   {"path": path, "commas": columns - 1, "limit": limit})
    return [int(n) for (n,) in rows]


_PARSE = {
    "DATE": "CAST(try_strptime({}, '%Y-%m-%d') AS DATE)",
    "INTEGER": "TRY_CAST({} AS INTEGER)",
    "BOOLEAN": "TRY_CAST({} AS BOOLEAN)",
}


def _clean(col: Column, columns: Sequence[str], text_columns: set[str]) -> list[str]:
    """Select expressions that stage one column: trimmed, empty as NULL, allowed values
    lower-cased; a typed column read as text gets parsed, with its text kept as _raw_
    (batch_view gives the other typed columns an empty _raw_ twin)."""
    c = col.name
    text = f"NULLIF(trim({c}), '')"
    if col.type == "VARCHAR":
        if c not in columns:
            return [f"CAST(NULL AS VARCHAR) AS {c}"]
        if col.allowed:  # lower() only the few values that need it: it is slow on 10M rows
            return [f"CASE WHEN {c} IN ({_sql_list(col.allowed)}) THEN {c} ELSE lower({text}) END AS {c}"]
        return [f"{text} AS {c}"]
    if c not in columns:
        return [f"CAST(NULL AS {col.type}) AS {c}"]
    if c in text_columns:
        return [f"{_PARSE[col.type].format(text)} AS {c}", f"{text} AS _raw_{c}"]
    return [c]


def stage_csv(db: Session, staged: str, path: str, table: Table, columns: Sequence[str],
              text_columns: set[str]) -> tuple[int, list[tuple]]:
    """Read one CSV into temp table `staged` with declared types; return (rows, rejects).

    Unknown and refused columns are read but never kept. Staged outside any transaction, so
    rowid is the record's index in the file. Rejects: (line, column, kind, csv_line, message).
    """
    known = {c.name: c for c in table.columns}
    types = {col: (known[col].type if col in known and col not in text_columns else "VARCHAR")
             for col in columns}
    cleaned = ", ".join(e for c in table.columns for e in _clean(c, columns, text_columns))
    db.execute(f"DROP TABLE IF EXISTS {staged}")
    db.execute(
        f"CREATE TEMP TABLE {staged} AS SELECT {cleaned} FROM read_csv($path, header = true, "
        "auto_detect = false, delim = ',', quote = '\"', escape = '\"', dateformat = '%Y-%m-%d', "
        "columns = $types, store_rejects = true, rejects_scan = 'rejects_scan', "
        "rejects_table = 'rejects_errors', null_padding = false, encoding = 'utf-8')",
        {"path": path, "types": types},
    )
    rows = int(db.scalar(f"SELECT count(*) FROM {staged}"))
    rejects = db.rows("SELECT line, column_name, error_type, csv_line, error_message FROM rejects_errors "
                      "ORDER BY line, column_idx")
    db.execute("DROP TABLE IF EXISTS rejects_errors")
    db.execute("DROP TABLE IF EXISTS rejects_scan")
    return rows, rejects


def batch_view(db: Session, table: Table, staged: Sequence[tuple[str, set[str]]]) -> str:
    """A view over the batch's staged rows of one table: (staged table, its text columns) each.

    _file and _idx locate a row in its file (turned into a row number later).
    """
    parts = []
    for number, (name, text_columns) in enumerate(staged):
        raw = [f"CAST(NULL AS VARCHAR) AS _raw_{c.name}" for c in table.columns
               if c.type != "VARCHAR" and c.name not in text_columns]
        extra = ", ".join(raw + [f"CAST({number} AS BIGINT) AS _file", "rowid AS _idx"])
        parts.append(f"SELECT *, {extra} FROM {name}")
    view = f"batch_{table.name}"
    db.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + " UNION ALL ".join(parts))
    return view


def with_known_participants(view: str) -> str:
    """The batch rows of an activity table with the participant they name (k_* columns)."""
    return (f"(SELECT b.*, k.participant_id AS k_participant_id, k.enrolled_on AS k_enrolled_on "
            f"FROM {view} b LEFT JOIN known_participants k USING (participant_id))")


# ------------------------------------------------------------------- rules ---

# Assessments (format 1.1): all ten items or the total, and they agree. A cell is blank when
# empty; a value that did not parse is reported as unparsed, not here.
_BLANK = [f"({i} IS NULL AND _raw_{i} IS NULL)" for i in BARC10_ITEMS]
_ALL_BLANK, _SOME_BLANK = " AND ".join(_BLANK), " OR ".join(_BLANK)
_ALL_GIVEN = " AND ".join(f"{i} IS NOT NULL" for i in BARC10_ITEMS)
_TOTAL_BLANK = "(total IS NULL AND _raw_total IS NULL)"
_SUM = " + ".join(BARC10_ITEMS)


def _predicate(kind: str, col: Column | None, table: Table) -> tuple[str, str | None]:
    """(SQL that holds on a wrong row, SQL for the value shown or None for the column)."""
    c = col.name if col else None
    typed = col is not None and col.type != "VARCHAR"
    match kind:
        case "unparsed":
            return f"_raw_{c} IS NOT NULL AND {c} IS NULL", f"_raw_{c}"
        case "required":
            return f"{c} IS NULL" + (f" AND _raw_{c} IS NULL" if typed else ""), None
        case "allowed":
            return f"{c} NOT IN ({_sql_list(col.allowed)})", None
        case "range":
            return f"{c} NOT BETWEEN {col.low} AND {col.high}", None
        case "code":
            return f"NOT regexp_full_match({c}, '{CODE_PATTERN}')", None
        case "too_long":
            return (f"length({c}) > $max_text",
                    f"left({c}, 60) || '... (' || format('{{:,}}', length({c})) || ' characters)'")
        case "control":
            return f"regexp_matches({c}, '{CONTROL_PATTERN}')", None
        case "future":
            return f"{c} > $today", None
        case "ancient":
            return f"{c} < DATE '{EARLIEST_DATE}'", None
        case "exit_before_enrollment":
            return ("exited_on < enrolled_on",
                    "CAST(exited_on AS VARCHAR) || ' < enrolled_on ' || CAST(enrolled_on AS VARCHAR)")
        case "exit_reason_missing":
            return "exited_on IS NOT NULL AND exit_reason IS NULL", None
        case "exited_on_missing":
            return "exit_reason IS NOT NULL AND exited_on IS NULL", "exit_reason"
        case "unknown_participant":
            return "k_participant_id IS NULL AND participant_id IS NOT NULL", None
        case "before_enrollment":
            d, lead = table.date_column, int(table.days_before_enrollment)
            return (f"{d} < k_enrolled_on - {lead}",
                    f"CAST({d} AS VARCHAR) || ' < enrolled_on ' || CAST(k_enrolled_on AS VARCHAR)")
        case "items_or_total":
            return f"{_ALL_BLANK} AND {_TOTAL_BLANK}", None
        case "items_partial":
            return (f"NOT ({_ALL_BLANK}) AND ({_SOME_BLANK})",
                    "concat_ws(',', " + ", ".join(f"coalesce(CAST({i} AS VARCHAR), _raw_{i}, '')"
                                                  for i in BARC10_ITEMS) + ")")
        case "total_mismatch":
            return (f"{_ALL_GIVEN} AND total IS NOT NULL AND total <> {_SUM}",
                    f"CAST(total AS VARCHAR) || ' (items sum to ' || CAST({_SUM} AS VARCHAR) || ')'")
    raise ValueError(f"unknown rule kind {kind!r}")


def _params(sql: str, today: dt.date, max_text: int) -> dict:
    """Only the parameters a statement uses: DuckDB refuses unused named parameters."""
    return {k: v for k, v in (("today", today), ("max_text", max_text)) if f"${k}" in sql}


def rule_counts(db: Session, source: str, table: Table, rules: Sequence[tuple[str, Column | None]],
                today: dt.date, max_text: int) -> list[int]:
    """How many rows break each (kind, column) rule, all in one pass over `source`."""
    sql = "SELECT " + ", ".join(
        f"count(*) FILTER (WHERE coalesce({_predicate(kind, col, table)[0]}, false))"
        for kind, col in rules) + f" FROM {source}"
    return [int(n) for n in db.rows(sql, _params(sql, today, max_text))[0]]


def rule_examples(db: Session, source: str, table: Table, kind: str, col: Column | None,
                  today: dt.date, max_text: int, limit: int) -> list[tuple[int, int, str | None]]:
    """The first (file, record index, shown value) rows that break one rule."""
    where, shown = _predicate(kind, col, table)
    shown = shown or (col.name if col else "NULL")
    sql = (f"SELECT _file, _idx, CAST({shown} AS VARCHAR) FROM {source} "
           f"WHERE coalesce({where}, false) ORDER BY 1, 2 LIMIT $limit")
    return db.rows(sql, {**_params(sql, today, max_text), "limit": limit})


def date_shapes(db: Session, source: str, column: str) -> tuple[int, int, int, int]:
    """Of a date column's unparsed values: (how many, how many look like NN/NN/YYYY, the
    largest first and second number among those)."""
    parts = f"regexp_extract(_raw_{column}, '^(\\d{{1,2}})[/.-](\\d{{1,2}})[/.-](\\d{{4}})$', ['a', 'b', 'y'])"
    row = db.rows(f"""SELECT count(*), count(p.y), coalesce(max(CAST(p.a AS INTEGER)), 0),
                             coalesce(max(CAST(p.b AS INTEGER)), 0)
                      FROM (SELECT CASE WHEN {parts}.y <> '' THEN {parts} END AS p FROM {source}
                            WHERE _raw_{column} IS NOT NULL AND {column} IS NULL)""")[0]
    return tuple(int(v) for v in row)


# -------------------------------------------------------------- duplicates ---

def key_hashes(db: Session, view: str, key: Sequence[str]) -> np.ndarray:
    """The hash of every row's key, for rows whose key values all parsed."""
    complete = " AND ".join(f"{k} IS NOT NULL" for k in key)
    return db.df(f"SELECT hash({', '.join(key)}) AS h FROM {view} WHERE {complete}")["h"].to_numpy()


def duplicate_rows(db: Session, view: str, key: Sequence[str], limit: int) -> tuple[list[tuple], int]:
    """Rows whose complete key an earlier row of the batch had: ([(file, idx, n, shown key,
    first position)], how many such rows in all)."""
    cols = ", ".join(key)
    complete = " AND ".join(f"{k} IS NOT NULL" for k in key)
    rows = db.rows(f"""
        WITH d AS (SELECT {cols}, _file, _idx, _file * {FILE_STRIDE} + _idx AS pos,
                          count(*) OVER (PARTITION BY {cols}) AS n,
                          min(_file * {FILE_STRIDE} + _idx) OVER (PARTITION BY {cols}) AS first
                   FROM {view} WHERE {complete})
        SELECT _file, _idx, n, {" || ' / ' || ".join(f"CAST({k} AS VARCHAR)" for k in key)}, first
        FROM d WHERE n > 1 AND pos > first ORDER BY _file, _idx LIMIT $limit""", {"limit": limit})
    extra = int(db.scalar(f"SELECT count(*) - count(DISTINCT ({cols})) FROM {view} WHERE {complete}"))
    return rows, extra


# ------------------------------------------------------------ participants ---

def make_known_participants(db: Session, has_batch: bool) -> None:
    """Temp table of every participant an activity row may name, with their enrollment."""
    db.execute("DROP TABLE IF EXISTS known_participants")
    if has_batch:
        db.execute("""CREATE TEMP TABLE known_participants AS
            SELECT participant_id, any_value(enrolled_on) AS enrolled_on FROM batch_participants
            WHERE participant_id IS NOT NULL GROUP BY participant_id
            UNION ALL
            SELECT participant_id, enrolled_on FROM participants
            WHERE participant_id NOT IN (SELECT participant_id FROM batch_participants
                                         WHERE participant_id IS NOT NULL)""")
    else:
        db.execute("CREATE TEMP TABLE known_participants AS SELECT participant_id, enrolled_on FROM participants")


def stranded_activity(db: Session, table: Table, limit: int) -> list[tuple]:
    """(file, idx, participant, first activity) where a new enrolled_on comes after stored activity."""
    d, lead = table.date_column, int(table.days_before_enrollment)
    return db.rows(f"""
        SELECT b._file, b._idx, b.participant_id, min(a.{d})
        FROM batch_participants b JOIN {table.name} a USING (participant_id)
        WHERE a.{d} < b.enrolled_on - {lead} GROUP BY ALL ORDER BY 1, 2 LIMIT $limit""", {"limit": limit})


# ------------------------------------------------------------------- write ---

def upsert(db: Session, table: Table, view: str, files: int, rows: int
           ) -> tuple[list[tuple[int, int]], list[tuple[str, list[str]]]]:
    """Insert new rows and update changed ones.

    Returns ([(matched, updated)] per file, [(participant, changed columns)] for participants).
    """
    cols = ", ".join(table.column_names)
    per_file = [(0, 0)] * files
    if not db.scalar(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table.name} LIMIT 1)"):
        db.insert_select(table.name, table.column_names, f"SELECT {cols} FROM {view}")  # first load: nothing to match
        return per_file, []
    key = " AND ".join(f"o.{k} = b.{k}" for k in table.key)
    flags = ", ".join(f"CASE WHEN o.{c} IS DISTINCT FROM b.{c} THEN '{c}' END" for c in table.value_columns)
    db.execute("DROP TABLE IF EXISTS matched")
    db.execute(f"""CREATE TEMP TABLE matched AS
        SELECT b.*, list_filter([{flags}], lambda x: x IS NOT NULL) AS _changed
        FROM {view} b JOIN {table.name} o ON {key}""")
    per_file = list(per_file)
    matched_rows = 0
    for file_no, n_matched, n_updated in db.rows(
            "SELECT _file, count(*), count(*) FILTER (WHERE len(_changed) > 0) FROM matched GROUP BY _file"):
        per_file[file_no] = (int(n_matched), int(n_updated))
        matched_rows += int(n_matched)
    if rows > matched_rows:
        db.insert_select(table.name, table.column_names, f"SELECT {cols} FROM {view} b "
                         f"ANTI JOIN matched m USING ({', '.join(table.key)})")
    updated: list[tuple[str, list[str]]] = []
    if any(u for _, u in per_file):
        db.update_from(table.name, table.key, table.value_columns,
                       f"SELECT {cols} FROM matched WHERE len(_changed) > 0")
        if table is PARTICIPANTS:
            updated = [(pid, list(ch)) for pid, ch in db.rows(
                "SELECT participant_id, _changed FROM matched WHERE len(_changed) > 0 ORDER BY 1")]
    return per_file, updated


def log_batch(db: Session, source: str, files: Sequence[tuple[str, str, str, int, int, int, int]]) -> int:
    """Record one batch and its files (name, table, sha256, rows, new, updated, unchanged)."""
    batch_id = int(db.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM import_batches"))
    db.insert_rows("import_batches", ("batch_id", "imported_at", "file_count", "source"),
                   [(batch_id, dt.datetime.now(), len(files), source)])
    db.insert_rows("import_files", ("batch_id", "file_name", "table_name", "sha256", "rows_read", "rows_new",
                                    "rows_updated", "rows_unchanged"), [(batch_id, *row) for row in files])
    return batch_id
