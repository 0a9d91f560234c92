"""The payment engine: outcome events in, claims in the ledger, the contract manager's
decisions on them, and the reads a contract manager audits with.

``PaymentEngine`` is the one object the API and the consumer hold; its parts each live
in their own module over a shared base (``payments.base``):

- ``payments.lifecycle``: consuming outcome events, and the claim commands
  (validate, approve, dispute, resolve, mark_paid);
- ``payments.queries``: claims, a claim's evidence trail, statements;
- ``payments.reconciliation``: the ledger against the claims recomputed from events;
- ``payments.integrity``: hash-chain verification and signed checkpoints.

What it answers with is in ``payments.views``; what it raises is drawn once in
``payments.errors``. Its settings (``LINKWAY_PAYMENTS_*``) are
``infra.settings.PaymentSettings``; ``from_settings`` turns them into a rate-card book
and a checkpoint key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy.engine import Engine

from infra.keyfile import generated_once
from infra.settings import PaymentSettings
from payments.integrity import LedgerIntegrity
from payments.lifecycle import ClaimLifecycle
from payments.queries import ClaimQueries
from payments.ratebook import RateCardBook
from payments.reconciliation import Reconciling

KEY_FILE = "ledger-checkpoint.key"


class PaymentEngine(ClaimLifecycle, ClaimQueries, Reconciling, LedgerIntegrity):
    """The payment engine over one database; see the module docstring for its parts."""

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: PaymentSettings, data_dir: Path
    ) -> PaymentEngine:
        return cls(
            engine,
            rate_card_book(settings),
            checkpoint_key(settings, data_dir),
            settings.second_approval_above_pence,
            checkpoint_every=settings.checkpoint_every_entries,
        )


def rate_card_book(settings: PaymentSettings) -> RateCardBook:
    """The rate cards the settings name, or the packaged ones when they name none."""
    paths = settings.rate_card_paths
    return RateCardBook.load(*paths) if paths else RateCardBook.packaged()


def checkpoint_key(settings: PaymentSettings, data_dir: Path) -> bytes:
    """The checkpoint HMAC key: the configured one, or in the embedded default one
    generated once under ``data_dir``."""
    if settings.checkpoint_key:
        return settings.checkpoint_key.encode()
    return generated_once(Path(data_dir) / KEY_FILE, lambda: secrets.token_hex(32).encode()).strip()
