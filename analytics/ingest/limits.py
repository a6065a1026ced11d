"""Bounds on what an import accepts, so hostile or broken input is refused quickly.

New settings (for the lead to fold into analytics/settings.py): each bounds memory or time
before the work is done, and each refusal says which bound was hit.
"""

from __future__ import annotations

MAX_TEXT_CHARS = 200  # program, site, gender, referral_source: longer is not a label
MAX_HEADER_COLUMNS = 50  # a file of the format has at most 11 columns
MAX_XLSX_ROWS = 200_000  # rows of a workbook's first sheet, empty ones included; more: use CSV
MAX_XLSX_CELL_CHARS = 32_767  # Excel's own limit for one cell: anything longer is not from Excel
MAX_XLSX_UNPACKED_BYTES = 512 * 1024 * 1024  # a workbook's parts, uncompressed (zip bombs)
MAX_FILE_NAME_BYTES = 255  # most file systems' limit for one name
