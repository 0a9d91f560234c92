"""The published event contract, generated from the catalogue: one JSON Schema per event
type and an AsyncAPI 3.0 document, committed under ``docs/events/`` (``make docs``).

Both come from the same per-type envelope models: the CloudEvents envelope with ``type``
fixed to one event type and ``data`` that type's model, so a partner validating against
the schema and Linkway's own ``catalogue.parse`` agree. The AsyncAPI document is built by
faststream from a documentation-only broker (it never connects); ``_annotate`` then adds
what faststream 0.7 cannot express yet: the handoff channel's parameter, partitions and
retention, the message key and headers, and component names the AsyncAPI 3.0 spec
allows.

Ids use the neutral base ``https://linkway.example/``: ``.example`` is reserved (RFC 2606),
so nothing resolves there by accident; a deployment that hosts the schemas rewrites it.
"""

from __future__ import annotations

import functools
import json
import operator
from pathlib import Path
from typing import Annotated, Any, Literal

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

from events import topics
from events.catalogue import EventData, registry
from events.distal_feed import FeedRow
from events.envelope import CloudEvent
from events.examples import example_event
from infra.settings import Settings
from messaging import deadletters

ID_BASE = "https://linkway.example/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS_DIR = Path("docs/events/schemas")
ASYNCAPI_FILE = Path("docs/events/asyncapi.json")
CONTRACT_VERSION = "1.0.0"  # the AsyncAPI document's version; bump on any contract change
WIRE_CONTENT_TYPE = "application/cloudevents+json"
PROVIDER_SOURCE = r"^urn:linkway:provider:[a-z0-9][a-z0-9-]{0,62}$"
DEAD_LETTER = "DeadLetter"  # suffix of a dead-letter channel's key

_ATTRIBUTES = {
    "specversion": "CloudEvents version; always 1.0.",
    "id": "Unique per event. Consumers deduplicate by it: delivery is at least once.",
    "source": "Who produced the event: urn:linkway:pathway, or urn:linkway:provider:<id>.",
    "type": "The event type, version included; a breaking change is a new version.",
    "subject": "The pseudonymous referral id; also the Kafka message key.",
    "time": "When the event was created (RFC 3339).",
    "datacontenttype": "Media type of data; always application/json.",
    "data": "The event's data; its fields are this type's model.",
}

# (channel key, topic, who writes, who reads). The handoff channel is a template: one
# topic per provider, so Kafka ACLs let each provider read only its own handoffs.
CHANNELS: list[tuple[str, str, str, str]] = [
    ("referrals", topics.REFERRALS, "Linkway", "Tier One partners, commissioner reporting"),
    ("handoffs", topics.HANDOFFS_PREFIX + "{provider_id}", "Linkway", "that Tier Two provider"),
    ("outcomes", topics.OUTCOMES, "Linkway", "the outcomes-contract payment engine"),
    ("payments", topics.PAYMENTS, "the payment engine", "Tier One partners, contract managers"),
    ("fund", topics.FUND, "Linkway", "Tier One partners, contract managers"),
    ("providerResponses", topics.PROVIDER_RESPONSES, "Tier Two providers", "Linkway"),
    ("providerAttendance", topics.PROVIDER_ATTENDANCE, "Tier Two providers", "Linkway"),
]


def _describe_envelope(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    for name, text in _ATTRIBUTES.items():
        schema["properties"][name]["description"] = text
    # CloudEvents requires specversion; the model defaults it only for Linkway's convenience.
    schema["required"] = sorted({*schema.get("required", []), "specversion"})


class _Envelope(CloudEvent):
    model_config = ConfigDict(json_schema_extra=_describe_envelope)


@functools.cache
def envelope_model(type_: str) -> type[BaseModel]:
    """The envelope of one event type: ``type`` a constant, ``data`` the type's model."""
    model = registry()[type_]
    fields: dict[str, Any] = {"type": (Literal[type_], ...), "data": (model, ...)}
    if model.TOPIC in topics.INBOUND:
        fields["source"] = (str, Field(max_length=200, pattern=PROVIDER_SOURCE))
    built: type[BaseModel] = create_model(
        f"{model.__name__}Event", __base__=_Envelope, __doc__=model.SUMMARY, **fields
    )
    return built


def event_schema(type_: str) -> dict[str, Any]:
    """A draft 2020-12 JSON Schema of the whole CloudEvents envelope of one event type."""
    schema = envelope_model(type_).model_json_schema()
    example = json.loads(example_event(type_).to_bytes())
    return {"$schema": DIALECT, "$id": schema_id(type_), **schema, "examples": [example]}


def schema_id(type_: str) -> str:
    return f"{ID_BASE}schemas/{type_}.json"


def _by_topic() -> dict[str, list[type[EventData]]]:
    grouped: dict[str, list[type[EventData]]] = {}
    for _, model in sorted(registry().items()):
        grouped.setdefault(model.TOPIC, []).append(model)
    return grouped


def _payload(key: str, models: list[type[EventData]]) -> Any:
    envelopes = [envelope_model(m.TYPE) for m in models]
    if len(envelopes) == 1:
        return envelopes[0]
    union = functools.reduce(operator.or_, envelopes)
    return Annotated[union, Field(discriminator="type", title=f"{key[0].upper()}{key[1:]}Event")]


def _handler(model: type[BaseModel]) -> Any:
    # Documentation only: faststream reads the message model from the handler's signature.
    async def handle(event: Any) -> None:
        return None

    handle.__annotations__ = {"event": model, "return": None}
    return handle


def documentation_broker() -> KafkaBroker:
    """A broker that declares every Linkway topic with its messages; it never connects."""
    broker = KafkaBroker(
        "kafka.linkway.example:9092",
        description="Placeholder: each deployment gives its partners their own bootstrap "
        "servers and credentials.",
    )
    grouped = _by_topic()
    for key, topic, writes, reads in CHANNELS:
        models = grouped.pop(topic)
        text = f"Written by {writes}; read by {reads}. " + " ".join(
            f"`{m.TYPE}`: {m.SUMMARY}" for m in models
        )
        if topic in topics.INBOUND:
            (inbound,) = models  # an inbound topic carries one event type
            handler = _handler(envelope_model(inbound.TYPE))
            broker.subscriber(topic, title=key, description=text)(handler)
        else:
            broker.publisher(topic, title=key, description=text, schema=_payload(key, models))
        if topic in topics.CONSUMED:
            # Every topic a Linkway consumer reads has a dead-letter topic beside it.
            broker.publisher(
                topics.dead_letter_topic(topic),
                title=key + DEAD_LETTER,
                description=f"Rejected {topic} messages, unchanged, with the reason in the "
                f"`{deadletters.REASON_HEADER}` header. Read by Linkway operators only.",
                schema=bytes,
            )
    if grouped:
        raise RuntimeError(f"topics with events but no documented channel: {sorted(grouped)}")
    broker.subscriber(
        topics.DISTAL_ACTIVITY,
        title="distalActivity",
        description="Written by the commissioner or ICB; read by Linkway. Not a CloudEvent: "
        "one JSON object per person, measure and month (docs/distal-feed.md). The only "
        "record that carries an NHS number: matched in the personal-data store, never "
        "republished.",
    )(_handler(FeedRow))
    broker.publisher(
        topics.dead_letter_topic(topics.DISTAL_ACTIVITY),
        title="distalActivity" + DEAD_LETTER,
        description="Rejected (malformed or unmatched) feed records, REDACTED: no NHS number "
        f"and no key, with the reason in the `{deadletters.REASON_HEADER}` header.",
        schema=bytes,
    )
    return broker


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of Linkway's topics, generated by faststream."""
    spec = AsyncAPI(
        documentation_broker(),
        title="Linkway events",
        version=CONTRACT_VERSION,
        description="Linkway's event contract with its partners. Every message is a "
        "CloudEvents 1.0 event in structured mode, keyed by the pseudonymous referral id. "
        "Partner guide: docs/events.md.",
        identifier=f"{ID_BASE}asyncapi",
        schema_version="3.0.0",
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    return _annotate(doc)


def _annotate(doc: dict[str, Any]) -> dict[str, Any]:
    doc = _rename_components(doc)
    partitions = Settings.model_fields["kafka_partitions"].default
    for key, channel in doc["channels"].items():
        kind = "dead_letter" if key.endswith(DEAD_LETTER) else "default"
        channel["bindings"]["kafka"].update(
            partitions=partitions,
            topicConfiguration={"retention.ms": topics.RETENTION_MS[kind]},
        )
        if "{provider_id}" in channel["address"]:
            channel["parameters"] = {
                "provider_id": {
                    "description": "The Tier Two provider's id (lower-case letters, digits, "
                    "hyphens). Each provider may read only its own topic.",
                    "examples": ["walking-group"],
                }
            }
    for key, message in doc["components"]["messages"].items():
        dead_letter = DEAD_LETTER in key
        message.pop("correlationId", None)  # faststream's default header; Linkway sets none
        message["headers"] = _headers(dead_letter)
        message["bindings"] = {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "The rejected message's own key."
                    if dead_letter
                    else "The pseudonymous referral id (the event's subject).",
                },
                "bindingVersion": "0.4.0",
            }
        }
        message["contentType"] = "application/octet-stream" if dead_letter else WIRE_CONTENT_TYPE
        if dead_letter:
            message["description"] = "The rejected message's bytes, exactly as received."
    return doc


def _headers(dead_letter: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "content-type": {
            "type": "string",
            "pattern": "^application/cloudevents\\+json",
            "examples": [WIRE_CONTENT_TYPE + "; charset=UTF-8"],
        },
        "traceparent": {"type": "string", "description": "W3C Trace Context (optional)."},
        "tracestate": {"type": "string", "description": "W3C Trace Context (optional)."},
    }
    required = ["content-type"]
    if dead_letter:
        props = {
            name: {"type": "string", "description": text}
            for name, text in [
                (
                    deadletters.REASON_HEADER,
                    "Why the message was refused (names fields, not values).",
                ),
                (deadletters.TOPIC_HEADER, "The topic the message was sent to."),
                (deadletters.PARTITION_HEADER, "Its partition there."),
                (deadletters.OFFSET_HEADER, "Its offset there."),
                (deadletters.CONSUMER_HEADER, "The Linkway consumer that refused it."),
                (deadletters.TIME_HEADER, "When it was refused (ISO 8601, UTC)."),
            ]
        }
        required = sorted(props)
    return {"type": "object", "properties": props, "required": required}


def _rename_components(doc: dict[str, Any]) -> dict[str, Any]:
    # faststream names components "<channel>:Message", but AsyncAPI 3.0 requires component
    # keys to match ^[a-zA-Z0-9.\-_]+$ (tools that enforce it would refuse the document).
    for section in ("messages", "schemas"):
        items = doc["components"][section]
        doc["components"][section] = {k.replace(":", "."): v for k, v in items.items()}
    _rename_refs(doc)
    return doc


def _rename_refs(value: Any) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            value["$ref"] = ref.replace(":", ".")
        for inner in value.values():
            _rename_refs(inner)
    elif isinstance(value, list):
        for inner in value:
            _rename_refs(inner)


def rendered() -> dict[Path, str]:
    """Every generated file (relative to the repository root) and its exact content."""
    files = {SCHEMAS_DIR / f"{t}.json": _dump(event_schema(t)) for t in sorted(registry())}
    files[ASYNCAPI_FILE] = _dump(asyncapi())
    return files


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def write_docs(root: Path) -> list[Path]:
    """Write the generated files under ``root``; remove schemas of types that are gone."""
    files = rendered()
    for stale in set((root / SCHEMAS_DIR).glob("*.json")) - {root / p for p in files}:
        stale.unlink()
    written = []
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def check_docs(root: Path) -> list[str]:
    """The generated files that are missing, out of date or no longer generated."""
    files = rendered()
    drift = [
        str(rel)
        for rel, content in files.items()
        if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != content
    ]
    extra = set((root / SCHEMAS_DIR).glob("*.json")) - {root / p for p in files}
    drift += sorted(str(p.relative_to(root)) for p in extra)
    return drift
