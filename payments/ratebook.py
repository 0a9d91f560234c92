"""Every version of every contract's rate card, and which one prices a given outcome.

A new version applies only to outcomes on or after its ``effective_from`` date (in the
contract's time zone); a claim keeps the version it was priced with, which
``RateCardBook.version`` finds again for validation and audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from pathway.measures import Registry
from payments.errors import RateCardError
from payments.ratecard import RateCard, load_rate_card

PACKAGED_DIR = Path(__file__).with_name("ratecards")


class RateCardBook:
    def __init__(self, cards: Iterable[RateCard]) -> None:
        by_contract: dict[str, list[RateCard]] = {}
        for card in cards:
            by_contract.setdefault(card.contract_id, []).append(card)
        for contract_id, versions in by_contract.items():
            versions.sort(key=lambda c: c.effective_from)
            _check_versions(contract_id, versions)
        self._cards = by_contract
        self._for_partner: dict[str, list[str]] = {}  # asked for every outcome decided

    @classmethod
    def load(cls, *paths: Path, registry: Registry | None = None) -> RateCardBook:
        """Rate cards from files, or from every ``*.toml`` in the directories given."""
        files: list[Path] = []
        for path in map(Path, paths):
            files.extend(sorted(path.glob("*.toml")) if path.is_dir() else [path])
        return cls(load_rate_card(f, registry) for f in files)

    @classmethod
    def packaged(cls) -> RateCardBook:
        """The rate cards shipped with Linkway (the demo county's contract)."""
        return cls.load(PACKAGED_DIR)

    def contracts(self) -> list[str]:
        return sorted(self._cards)

    def contracts_for(self, partner_id: str) -> list[str]:
        """Contracts under which any version pays this Tier One partner."""
        found = self._for_partner.get(partner_id)
        if found is None:
            found = self._for_partner[partner_id] = sorted(
                cid
                for cid, cards in self._cards.items()
                if any(partner_id in card.partners for card in cards)
            )
        return list(found)

    def versions(self, contract_id: str) -> list[RateCard]:
        return list(self._versions(contract_id))

    def version(self, contract_id: str, version: str) -> RateCard:
        """The version a claim was priced with."""
        for card in self._versions(contract_id):
            if card.version == version:
                return card
        raise RateCardError(f"contract {contract_id} has no rate card version {version!r}")

    def in_force(self, contract_id: str, occurred_at: datetime) -> RateCard:
        """The version that prices an outcome at this moment: the latest whose
        ``effective_from`` is on or before the outcome's date."""
        versions = self._versions(contract_id)
        day = versions[0].local_date(occurred_at)
        current = [card for card in versions if card.effective_from <= day]
        if not current:
            raise RateCardError(
                f"no rate card for contract {contract_id} is in force on {day}; "
                f"the first takes effect on {versions[0].effective_from}"
            )
        return current[-1]

    def _versions(self, contract_id: str) -> list[RateCard]:
        try:
            return self._cards[contract_id]
        except KeyError:
            raise RateCardError(f"no rate card for contract {contract_id!r}") from None


def _check_versions(contract_id: str, versions: list[RateCard]) -> None:
    seen: set[str] = set()
    for earlier, later in pairwise(versions):
        if earlier.effective_from == later.effective_from:
            raise RateCardError(
                f"contract {contract_id}: versions {earlier.version} and {later.version} "
                f"both take effect on {later.effective_from}"
            )
    for card in versions:
        if card.version in seen:
            raise RateCardError(f"contract {contract_id}: version {card.version} appears twice")
        seen.add(card.version)
        if card.timezone != versions[0].timezone:
            raise RateCardError(
                f"contract {contract_id}: version {card.version} changes the time zone"
            )
