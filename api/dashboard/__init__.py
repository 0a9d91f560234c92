"""The dashboard for contract managers, Tier One partners and commissioners: a page served
by the API that draws the KPIs (``sources``) with a vendored chart library. See
``routes`` for how it signs in, and docs/reporting.md for what each number means."""
