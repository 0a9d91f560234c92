"""The Well-being Action Fund: a fund per contract and period with a budget in pence,
small grants for a person's goal requested by a link worker and approved by someone
else, and the fund statement (docs/fund.md)."""
