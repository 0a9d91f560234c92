"""Equality monitoring: the questions and their categories, small-number suppression,
the postcode to IMD decile lookup (with its data) and the suppressed report. Pure; the
answers themselves live only in the personal-data store (docs/equality.md)."""
