"""Where the tool has read its handoff topic up to, and the handoffs it has seen.

The tool commits its own position only after it has printed (and written) what it read,
so a re-run prints only new handoffs, and a crash in between prints some again rather
than lose any (handoff ids tell a repeat). Positions are kept in one of two places:

- the **state file** (default): a small JSON file beside the tool, also holding each
  handoff seen, so ``accept``/``report`` can find a handoff's referral id;
- a **consumer group** (``--group``): offsets committed to Kafka under the group, with
  partitions assigned by the tool itself (no group join, which is slow on some brokers).
  The handoffs seen still go to the state file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

MAX_REMEMBERED = 20_000


class StateError(ValueError):
    pass


class StateFile:
    def __init__(self, path: Path, provider_id: str) -> None:
        self.path = path
        self.provider_id = provider_id
        self.offsets: dict[str, int] = {}
        self.handoffs: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                body = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise StateError(f"cannot read the state file {path}: {exc}") from None
            if body.get("provider_id") != provider_id:
                raise StateError(
                    f"the state file {path} belongs to provider {body.get('provider_id')!r}; "
                    "use --state to name this provider's own"
                )
            self.offsets = {str(k): int(v) for k, v in body.get("offsets", {}).items()}
            self.handoffs = dict(body.get("handoffs", {}))

    def remember(self, handoff_id: str, **fields: Any) -> None:
        self.handoffs.pop(handoff_id, None)  # re-inserted last: the oldest are dropped first
        self.handoffs[handoff_id] = fields
        while len(self.handoffs) > MAX_REMEMBERED:
            del self.handoffs[next(iter(self.handoffs))]

    def referral_of(self, handoff_id: str) -> str | None:
        found = self.handoffs.get(handoff_id)
        return None if found is None else str(found["referral_id"])

    def save(self) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half."""
        body = {"provider_id": self.provider_id, "offsets": self.offsets, "handoffs": self.handoffs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class Positions:
    """Next offset to read per partition: from the state file, or from a consumer group."""

    def __init__(self, consumer: KafkaConsumer, state: StateFile, group: str | None) -> None:
        self.consumer, self.state, self.group = consumer, state, group

    def load(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        if self.group:
            return {tp: self.consumer.committed(tp) for tp in partitions}
        return {tp: self.state.offsets.get(str(tp.partition)) for tp in partitions}

    def commit(self, positions: dict[TopicPartition, int]) -> None:
        if self.group and positions:
            self.consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in positions.items()}
            )
        else:
            self.state.offsets.update({str(tp.partition): o for tp, o in positions.items()})
        self.state.save()
