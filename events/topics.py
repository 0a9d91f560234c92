"""Kafka topic names, defined once. The partner-facing catalogue is docs/events.md.

Every topic is keyed by the pseudonymous referral id, so one referral's events are
ordered. Provider handoffs go to one topic per provider so that Kafka ACLs can let a
provider read its own handoffs and nothing else.
"""

from __future__ import annotations

import re

REFERRALS = "linkway.referrals"  # referral lifecycle, written by Linkway
OUTCOMES = "linkway.outcomes"  # outcome facts for the payment engine
PAYMENTS = "linkway.payments"  # claim lifecycle, written by the payment engine
FUND = "linkway.fund"  # Well-being Action Fund: budgets and grants, keyed by fund id
PROVIDER_RESPONSES = "linkway.provider.responses"  # inbound: accept/reject/capacity
PROVIDER_ATTENDANCE = "linkway.provider.attendance"  # inbound: session attendance
DISTAL_ACTIVITY = "linkway.distal.activity"  # inbound: a commissioner's monthly counts
HANDOFFS_PREFIX = "linkway.handoffs."  # + provider id: one topic per Tier Two provider
DEAD_LETTER_SUFFIX = ".dlq"

INBOUND = (PROVIDER_RESPONSES, PROVIDER_ATTENDANCE)
# Inbound feeds of records that are not CloudEvents (their schemas: docs/events.md).
FEEDS = (DISTAL_ACTIVITY,)
# Topics a Linkway consumer reads: each has a dead-letter topic.
CONSUMED = (*INBOUND, *FEEDS, OUTCOMES, REFERRALS)

# Dead-letter topics keep what they hold for a long time: it is evidence of a partner's
# problem that someone has to look at. Other topics keep a week; the outbox is the archive.
RETENTION_MS = {"default": 7 * 24 * 3600 * 1000, "dead_letter": 90 * 24 * 3600 * 1000}

_PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def handoffs_topic(provider_id: str) -> str:
    if not _PROVIDER_ID.match(provider_id):
        raise ValueError("a provider id is lower-case letters, digits and hyphens")
    return HANDOFFS_PREFIX + provider_id


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX


def core_topics() -> list[str]:
    """The topics Linkway needs before any provider is registered."""
    topics = [REFERRALS, OUTCOMES, PAYMENTS, FUND, *INBOUND, *FEEDS]
    return topics + [dead_letter_topic(t) for t in CONSUMED]


def is_dead_letter(topic: str) -> bool:
    return topic.endswith(DEAD_LETTER_SUFFIX)


def retention_ms(topic: str) -> int:
    return RETENTION_MS["dead_letter" if is_dead_letter(topic) else "default"]
