"""The Linkway provider tool: a small command a Tier Two provider's administrator runs to
receive the provider's handoffs from Kafka and send back responses and attendance.

It is a client of Linkway's public event contract only (docs/events.md,
docs/providers.md) and needs nothing but ``kafka-python``: it imports nothing from
Linkway, so a provider can copy this package and run it on its own.

- ``contract``: topic names, the CloudEvents it sends, their ids, and reading a handoff;
- ``position``: where the tool has read up to (a local state file or a consumer group);
- ``cli``: the ``linkway-provider`` command (``python -m providerkit``).
"""
