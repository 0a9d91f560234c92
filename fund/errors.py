"""What the Well-being Action Fund refuses, drawn once::

    FundError                           the fund refuses a request
    ├── UnknownFund(LookupError)        no fund has that id (or the caller may not see it)
    ├── UnknownGrant(LookupError)       no grant has that id in that fund
    ├── FundExists                      the contract already has a fund for that period
    ├── IllegalMove(ValueError)         the grant's status does not allow the move
    ├── DutyConflict                    separation of duties forbids this identity
    ├── OverBudget                      approving would commit more than the budget holds
    └── InvalidGrant(ValueError)        a purpose the fund does not fund, an amount over
                                        the fund's limit, a spend over the approved amount

Messages hold ids, codes, statuses and amounts only, never personal data and never free
text a client sent, so the API can show them as they are.
"""

from __future__ import annotations


class FundError(Exception):
    """The fund refuses a request."""


class UnknownFund(FundError, LookupError):
    """No fund has that id."""


class UnknownGrant(FundError, LookupError):
    """No grant has that id in that fund."""


class FundExists(FundError):
    """A contract has one fund per period."""


class IllegalMove(FundError, ValueError):
    """The grant's status does not allow this move; the message says what would."""


class DutyConflict(FundError):
    """Separation of duties forbids this identity from this step on this grant."""


class OverBudget(FundError):
    """Approving the grant would commit more than the fund's budget has left."""


class InvalidGrant(FundError, ValueError):
    """A request the fund cannot take: the message names the field."""
