"""The import format, version 1.1, as data.

One declaration serves the importer (which columns, which types, which values),
the store's CHECK constraints and the docs, so the three cannot drift apart.
See docs/import-format.md. Version 1.1 adds assessments.csv (issue 14); version 1
files load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_VERSION = "1.1"

EXIT_REASONS = ("completed", "dropped_out", "transferred", "incarcerated", "deceased", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
SUBSTANCES = ("alcohol", "opioids", "stimulants", "cannabis", "polysubstance", "other")
MEETING_TYPES = ("aa", "na", "smart", "peer_group", "online_community", "other")
MEETING_MODALITIES = ("in_person", "online")
MENTORING_MODALITIES = ("in_person", "phone", "video", "text")
INSTRUMENTS = ("barc10",)  # Brief Assessment of Recovery Capital; the format allows others later
BARC10_ITEMS = tuple(f"item_{i}" for i in range(1, 11))

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
    checks: tuple[str, ...] = ()  # row CHECKs across columns, in the store's DDL
    days_before_enrollment: int = 0  # how long before enrollment a row may fall (assessments: intake)

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

_ITEMS_GIVEN = " AND ".join(f"{c} IS NOT NULL" for c in BARC10_ITEMS)
_ITEMS_BLANK = " AND ".join(f"{c} IS NULL" for c in BARC10_ITEMS)

# Format 1.1. Not an engagement table (not in ACTIVITY_TABLES): an assessment may fall up
# to 30 days before enrollment, and it does not count as attending the program.
ASSESSMENTS = Table(
    name="assessments",
    key=("participant_id", "instrument", "assessed_on"),
    date_column="assessed_on",
    columns=(
        Column("participant_id", required=True, code=True),
        Column("assessed_on", "DATE", required=True),
        Column("instrument", required=True, allowed=INSTRUMENTS),
        *(Column(c, "INTEGER", low=1, high=6) for c in BARC10_ITEMS),
        Column("total", "INTEGER", low=10, high=60),
    ),
    days_before_enrollment=30,  # intake screening often comes before enrollment
    checks=(
        f"(({_ITEMS_GIVEN}) OR ({_ITEMS_BLANK})) AND (total IS NOT NULL OR ({_ITEMS_GIVEN}))",
        f"total IS NULL OR ({_ITEMS_BLANK}) OR total = {' + '.join(BARC10_ITEMS)}",
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (PARTICIPANTS, ATTENDANCE, CHECKINS, MENTORING, ASSESSMENTS)}
ACTIVITY_TABLES: tuple[Table, ...] = (ATTENDANCE, CHECKINS, MENTORING)
