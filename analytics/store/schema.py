"""The import format, version 1, as data.

One declaration serves the importer (which columns, which types, which values),
the store's CHECK constraints and the docs, so the three cannot drift apart.
Documented in docs/import-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_VERSION = 1

EXIT_REASONS = ("completed", "dropped_out", "transferred", "incarcerated", "deceased", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
SUBSTANCES = ("alcohol", "opioids", "stimulants", "cannabis", "polysubstance", "other")
MEETING_TYPES = ("aa", "na", "smart", "peer_group", "online_community", "other")
MEETING_MODALITIES = ("in_person", "online")
MENTORING_MODALITIES = ("in_person", "phone", "video", "text")

# Column names that look like direct identifiers: refused, never stored.
IDENTIFIER_NAMES = frozenset({
    "name", "first_name", "last_name", "firstname", "lastname", "full_name", "surname",
    "email", "e_mail", "phone", "phone_number", "telephone", "mobile", "address",
    "street", "city_address", "zip", "zipcode", "zip_code", "postcode", "postal_code",
    "ssn", "social_security_number", "dob", "date_of_birth", "birth_date", "birthdate",
    "mrn", "medical_record_number", "medicaid_id", "medicare_id", "insurance_id",
})

# Pseudonymous codes: letters, digits and - _ . only (no spaces, no @), so that
# a name or an e-mail address typed into an ID column is refused.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"

MAX_MINUTES = 1440  # one day: a longer session is a typing error
EARLIEST_DATE = "1900-01-01"


@dataclass(frozen=True)
class Column:
    """One column of an import file."""

    name: str
    type: str = "VARCHAR"  # DuckDB type the file is read as: VARCHAR, DATE, INTEGER, BOOLEAN
    required: bool = False
    allowed: tuple[str, ...] | None = None
    low: int | None = None
    high: int | None = None
    code: bool = False  # a pseudonymous code (participant_id, mentor_id)


@dataclass(frozen=True)
class Table:
    """One kind of import file and the store table it fills."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None = None  # the activity date, for activity tables

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.name not in self.key)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


PARTICIPANTS = Table(
    name="participants",
    key=("participant_id",),
    columns=(
        Column("participant_id", required=True, code=True),
        Column("program", required=True),
        Column("site"),
        Column("enrolled_on", "DATE", required=True),
        Column("sobriety_start", "DATE"),
        Column("exited_on", "DATE"),
        Column("exit_reason", allowed=EXIT_REASONS),
        Column("age_band", allowed=AGE_BANDS),
        Column("gender"),
        Column("primary_substance", allowed=SUBSTANCES),
        Column("referral_source"),
    ),
)

ATTENDANCE = Table(
    name="attendance",
    key=("participant_id", "attended_on", "meeting_type"),
    date_column="attended_on",
    columns=(
        Column("participant_id", required=True, code=True),
        Column("attended_on", "DATE", required=True),
        Column("meeting_type", required=True, allowed=MEETING_TYPES),
        Column("modality", required=True, allowed=MEETING_MODALITIES),
        Column("minutes", "INTEGER", low=1, high=MAX_MINUTES),
    ),
)

CHECKINS = Table(
    name="checkins",
    key=("participant_id", "checked_in_on"),
    date_column="checked_in_on",
    columns=(
        Column("participant_id", required=True, code=True),
        Column("checked_in_on", "DATE", required=True),
        Column("used", "BOOLEAN", required=True),
        Column("craving", "INTEGER", low=0, high=10),
        Column("mood", "INTEGER", low=1, high=5),
    ),
)

MENTORING = Table(
    name="mentoring",
    key=("participant_id", "mentor_id", "met_on"),
    date_column="met_on",
    columns=(
        Column("participant_id", required=True, code=True),
        Column("mentor_id", required=True, code=True),
        Column("met_on", "DATE", required=True),
        Column("minutes", "INTEGER", low=1, high=MAX_MINUTES),
        Column("modality", required=True, allowed=MENTORING_MODALITIES),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (PARTICIPANTS, ATTENDANCE, CHECKINS, MENTORING)}
ACTIVITY_TABLES: tuple[Table, ...] = (ATTENDANCE, CHECKINS, MENTORING)
