"""The validation rules every row must meet, and the problems they report.

A rule is data: a kind (store/queries/ingest.py says how DuckDB finds the rows that break
it), a column and the message a data manager reads. Every rule is counted in one pass over
the batch; examples are listed only for the rules that fail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from analytics.ingest.files import SourceFile, row_number
from analytics.ingest.limits import MAX_TEXT_CHARS
from analytics.ingest.problems import MAX_EXAMPLES, Problem, more_problem
from analytics.store.connection import Session
from analytics.store.queries import ingest as q
from analytics.ingest import assessments as assessment_rules
from analytics.store.schema import ACTIVITY_TABLES, ASSESSMENTS, EARLIEST_DATE, PARTICIPANTS, Column, Table

TYPE_HINTS = {
    "DATE": "not a valid date (expected YYYY-MM-DD, e.g. 2025-03-31)",
    "INTEGER": "not a whole number",
    "BOOLEAN": "not true or false",
}
_CONTROL = re.compile("[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Rule:
    """Rows of kind `kind` on `column` are wrong, and `message` says why."""

    kind: str
    column: Column | None
    message: str

    @property
    def column_name(self) -> str | None:
        return self.column.name if self.column else None


def free_text(col: Column) -> bool:
    """A label typed by a person (program, site, ...): no code pattern, no allowed set."""
    return col.type == "VARCHAR" and not col.code and not col.allowed


def row_rules(table: Table, today: dt.date) -> list[Rule]:
    """The rules every row of `table` must meet on its own."""
    rules: list[Rule] = []
    for col in table.columns:
        if col.type != "VARCHAR":
            rules.append(Rule("unparsed", col, TYPE_HINTS[col.type]))
        if col.required:
            rules.append(Rule("required", col, "required value is missing"))
        if col.allowed:
            rules.append(Rule("allowed", col, f"not an allowed value (allowed: {', '.join(col.allowed)})"))
        if col.low is not None and col.high is not None:
            rules.append(Rule("range", col, f"out of range (must be {col.low} to {col.high})"))
        if col.code and (table is PARTICIPANTS or col.name != "participant_id"):  # else: must be known
            rules.append(Rule("code", col, "not a pseudonymous code: use letters, digits and - _ . only "
                              "(no names, spaces or e-mail addresses)"))
        if free_text(col):
            rules.append(Rule("too_long", col, f"text is too long (at most {MAX_TEXT_CHARS} characters)"))
            rules.append(Rule("control", col, "contains a control character (a line break, tab, "
                              "NUL, bell or a right-to-left override): remove it"))
        if col.type == "DATE":
            rules.append(Rule("future", col, f"date is in the future (after today, {today.isoformat()})"))
            rules.append(Rule("ancient", col, f"impossible date (before {EARLIEST_DATE})"))
    if table is PARTICIPANTS:
        rules += [
            Rule("exit_before_enrollment", table.column("exited_on"), "exit is before enrollment"),
            Rule("exit_reason_missing", table.column("exit_reason"), "exit_reason is required when exited_on is given"),
            Rule("exited_on_missing", table.column("exited_on"), "exited_on is required when exit_reason is given"),
        ]
    return rules


def activity_rules(table: Table) -> list[Rule]:
    """Rules that need the participant: known, and activity on or after enrollment (an
    assessment: its own window and item rules, analytics.ingest.assessments)."""
    known = Rule("unknown_participant", table.column("participant_id"),
                 "unknown participant: not in the store and not in this import's participants file")
    if table is ASSESSMENTS:
        return [known] + [Rule(kind, table.column(col), msg) for kind, col, msg in assessment_rules.RULES]
    return [known, Rule("before_enrollment", table.column(table.date_column),
                        "activity before the participant's enrollment")]


def run_rules(db: Session, source: str, table: Table, rules: list[Rule], files: list[SourceFile],
              today: dt.date) -> list[Problem]:
    """Count every rule's failures in one pass; list examples for the rules that fail."""
    counts = q.rule_counts(db, source, table, [(r.kind, r.column) for r in rules], today, MAX_TEXT_CHARS)
    problems: list[Problem] = []
    for rule, count in zip(rules, counts):
        if count:
            problems += rule_problems(db, source, table, rule, count, files, today)
    return problems


def rule_problems(db: Session, source: str, table: Table, rule: Rule, count: int, files: list[SourceFile],
                  today: dt.date) -> list[Problem]:
    message = rule.message
    if rule.kind == "unparsed" and rule.column.type == "DATE":
        message += date_hint(*q.date_shapes(db, source, rule.column.name))
    examples = q.rule_examples(db, source, table, rule.kind, rule.column, today, MAX_TEXT_CHARS, MAX_EXAMPLES)
    problems = [Problem(files[f].name, row_number(files[f], idx), rule.column_name, shown(rule, value), message)
                for f, idx, value in examples]
    if count > MAX_EXAMPLES:
        problems.append(more_problem(files[0].name if len(files) == 1 else "(several files)", rule.column_name,
                                     count - MAX_EXAMPLES, f"rows: {message}"))
    return problems


def shown(rule: Rule, value: str | None) -> str | None:
    """The value as the report shows it: control characters written as \\uXXXX, so a
    right-to-left override or a line break cannot garble the report."""
    if value is None or rule.kind != "control":
        return value
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def date_hint(unparsed: int, slashed: int, first_max: int, second_max: int) -> str:
    """Name the day-month order a date column seems to use, and how to fix it."""
    if not unparsed or slashed * 2 < unparsed:
        return ""
    if first_max > 12 and second_max <= 12:
        shape = "DD/MM/YYYY (day first)"
    elif second_max > 12 and first_max <= 12:
        shape = "MM/DD/YYYY (month first)"
    else:
        shape = "MM/DD/YYYY or DD/MM/YYYY"
    return (f"; the column looks like {shape}: format the column as YYYY-MM-DD (in Excel: Format Cells, "
            "Custom, yyyy-mm-dd) and save it again as CSV UTF-8")


def duplicate_problems(db: Session, view: str, key: tuple[str, ...], files: list[SourceFile]) -> list[Problem]:
    """Rows whose key an earlier row of the same import already had; a row whose key did not
    parse (an unreadable date) is reported for that, never as a duplicate.

    Sorting the keys' 64-bit hashes is the cheap test (a second over 10M rows, where a
    GROUP BY takes several); only a repeated hash costs the exact query.
    """
    hashes = np.sort(q.key_hashes(db, view, key))
    if not (hashes[1:] == hashes[:-1]).any():
        return []
    dups, extra = q.duplicate_rows(db, view, key, MAX_EXAMPLES)
    name = ", ".join(key)
    problems = []
    for file_no, idx, _n, value, first in dups:
        first_src = files[first // q.FILE_STRIDE]
        first_row = row_number(first_src, first % q.FILE_STRIDE)
        problems.append(Problem(files[file_no].name, row_number(files[file_no], idx), name, value,
                                f"duplicate key ({name}): same as {first_src.name} row {first_row}"))
    if extra > len(dups):
        problems.append(more_problem(files[0].name if len(files) == 1 else "(several files)", name,
                                     extra - len(dups), "duplicate rows"))
    return problems


def enrollment_moves(db: Session, files: list[SourceFile]) -> list[Problem]:
    """A changed enrolled_on must not leave stored activity before the new enrollment."""
    problems = []
    for table in (*ACTIVITY_TABLES, ASSESSMENTS):
        for file_no, idx, pid, first in q.stranded_activity(db, table, MAX_EXAMPLES):
            problems.append(Problem(files[file_no].name, row_number(files[file_no], idx), "enrolled_on",
                                    pid, f"the store already has {table.name} for this participant on "
                                    f"{first}, before the new enrolled_on"))
    return problems
