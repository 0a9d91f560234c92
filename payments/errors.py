"""What the payment engine refuses, drawn once::

    PaymentError                        the payment engine refuses a request or a file
    ├── UnknownClaim(LookupError)       no claim has that id
    ├── IllegalTransition(ValueError)   the claim's lifecycle does not allow the move
    ├── DutyConflict                    separation of duties forbids this identity
    ├── ClaimInvalid                    validation found problems (``problems`` lists them all)
    ├── InvalidValue(ValueError)        a reason or payment reference that is not a code,
    │                                   or a resolution other than upheld or reversed
    ├── LedgerBroken                    the stored chain does not verify (so no checkpoint)
    │   └── UnreadableEntry(ValueError) a stored row is no longer a ledger entry
    └── RateCardError(ValueError)       a rate card that cannot be used (names the field)

Messages hold ids, codes, statuses and field names only, never personal data and never
a value a client sent, so the API can show them as they are. The ``ValueError`` and
``LookupError`` bases are kept for callers that caught those before the hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterable


class PaymentError(Exception):
    """The payment engine refuses a request or a file."""


class UnknownClaim(PaymentError, LookupError):
    """No claim has that id."""


class IllegalTransition(PaymentError, ValueError):
    """A lifecycle move the claim's history does not allow; the message says what would."""


class DutyConflict(PaymentError):
    """Separation of duties forbids this identity from this step on this claim."""


class ClaimInvalid(PaymentError):
    """Validation found problems; ``problems`` lists every one of them."""

    def __init__(self, claim: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"claim {claim} fails validation: " + "; ".join(self.problems))


class InvalidValue(PaymentError, ValueError):
    """A reason or payment reference that is not a code, or an unknown resolution."""


class LedgerBroken(PaymentError):
    """The stored chain does not verify, so it cannot be checkpointed."""


class UnreadableEntry(LedgerBroken, ValueError):
    """A stored row that is not a ledger entry any more (tampered outside the code)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"ledger entry {seq} cannot be read: {reason}")
        self.seq, self.reason = seq, reason


class RateCardError(PaymentError, ValueError):
    """A rate card that cannot be used; the message names the field and what is wrong."""
