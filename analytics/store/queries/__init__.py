"""Every SQL statement outside the migrations, one module per area (the importer's: ingest.py).

Plain functions taking the Store (or a Session, for work inside a transaction or on a
temporary table) plus plain values; bound parameters only; they return DataFrames,
numpy-ready frames or values. The modules that use them hold no SQL, so a second store
engine needs a second set of these modules and nothing else.

Identifiers that end up in SQL text (a descriptor column, a group column) come from code,
never from user input, and are checked against the declared columns first.
"""
