"""Outcomes analytics for peer-support addiction-recovery programs.

The library behind the dashboard, the CLI (`python -m analytics`) and the
notebooks: store, validated import, synthetic data, outcome statistics.
"""

__version__ = "0.1.0"
