"""The published event contract: generated docs in step with the code, an example of every
event type valid against its model and its JSON Schema, no personal data in any schema,
and a partner guide that names every type and topic."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from pydantic import BaseModel

from events import topics
from events.catalogue import PERSONAL_DATA_FIELDS, EventRejected, parse, registry
from events.examples import EXAMPLES, example, example_event
from messaging import asyncapi as contract

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "events.md"
TYPES = sorted(registry())


def validator(type_: str) -> Draft202012Validator:
    schema = contract.event_schema(type_)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def property_names(schema: Any) -> set[str]:
    """Every property name a schema declares or requires, at any depth."""
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {})) | set(schema.get("required", []))
        for key, inner in schema.items():
            if key not in ("examples", "const", "default", "enum"):  # values, not names
                names |= property_names(inner)
    elif isinstance(schema, list):
        for inner in schema:
            names |= property_names(inner)
    return names


def personal(names: set[str]) -> set[str]:
    return {n for n in names if n.lower() in PERSONAL_DATA_FIELDS}


def test_committed_docs_match_the_code():
    drift = contract.check_docs(ROOT)
    assert drift == [], (
        f"the generated event docs are out of date: {', '.join(drift)}. "
        "Run `make docs` and commit docs/events/."
    )


def test_every_event_type_has_an_example():
    missing = sorted(set(TYPES) - set(EXAMPLES))
    assert not missing, f"add an example to events/examples.py for: {', '.join(missing)}"
    assert sorted(EXAMPLES) == TYPES, "an example names a type that is not registered"


@pytest.mark.parametrize("type_", TYPES)
def test_example_is_valid_against_its_model_and_its_json_schema(type_: str):
    data = example(type_)
    assert type(data).model_validate(data.model_dump(mode="json")) == data
    event = example_event(type_)
    envelope, parsed = parse(event.to_bytes())
    assert (envelope.type, parsed) == (type_, data)
    # The subject (and Kafka key) is the referral, or on linkway.fund the fund.
    key = "fund_id" if data.TOPIC == topics.FUND else "referral_id"
    assert envelope.subject == data.model_dump()[key]
    validator(type_).validate(json.loads(event.to_bytes()))


@pytest.mark.parametrize("type_", TYPES)
def test_json_schema_fixes_the_type_and_refuses_extra_fields(type_: str):
    check = validator(type_)
    event = json.loads(example_event(type_).to_bytes())
    for broken in (
        {**event, "type": "linkway.referral.teleported.v1"},
        {**event, "data": {**event["data"], "unexpected": 1}},
        {k: v for k, v in event.items() if k != "specversion"},
    ):
        with pytest.raises(ValidationError):
            check.validate(broken)


def test_inbound_schemas_require_the_providers_source():
    for type_ in ("linkway.provider.response.v1", "linkway.provider.attendance.v1"):
        event = json.loads(example_event(type_).to_bytes())
        with pytest.raises(ValidationError, match="does not match"):
            validator(type_).validate({**event, "source": "urn:linkway:pathway"})


def test_no_event_schema_names_a_personal_data_field():
    for type_ in TYPES:
        found = personal(property_names(contract.event_schema(type_)))
        assert not found, f"{type_} has personal-data fields: {sorted(found)}"
    components = contract.asyncapi()["components"]
    # The one exception, by design: the distal feed's inbound record carries the NHS
    # number its sender knows people by (docs/distal-feed.md); nothing else may.
    feed = components["schemas"].pop("FeedRow")
    assert personal(property_names(feed)) == {"nhs_number"}
    found = personal(property_names(components))
    assert not found, f"the AsyncAPI document has personal-data fields: {sorted(found)}"


def test_the_personal_data_scan_finds_a_nested_field():
    class Contact(BaseModel):
        Postcode: str

    class Leaky(BaseModel):
        referral_id: str
        contacts: list[Contact]

    assert personal(property_names(Leaky.model_json_schema())) == {"Postcode"}


def _raw(type_: str, **changes: Any) -> bytes:
    event = json.loads(example_event("linkway.referral.accepted.v1").to_bytes())
    return json.dumps({**event, "type": type_, **changes}).encode()


def test_parse_rejects_an_unknown_type_with_a_reason():
    with pytest.raises(EventRejected, match=r"unknown event type 'linkway\.referral\.teleported"):
        parse(_raw("linkway.referral.teleported.v1"))


def test_parse_rejects_a_wrong_version_naming_the_accepted_ones():
    reason = (
        "unsupported version of linkway.referral.accepted: got linkway.referral.accepted.v2, "
        "accepted linkway.referral.accepted.v1"
    )
    with pytest.raises(EventRejected, match=re.escape(reason)):
        parse(_raw("linkway.referral.accepted.v2"))
    inbound = frozenset({"linkway.provider.response.v1"})
    with pytest.raises(EventRejected, match=r"unsupported version of linkway\.provider\.response"):
        parse(_raw("linkway.provider.response.v9"), allowed_types=inbound)


def test_parse_refuses_a_personal_data_field_naming_it():
    event = json.loads(example_event("linkway.provider.attendance.v1").to_bytes())
    event["data"]["postcode"] = "SY11 1AA"
    with pytest.raises(EventRejected, match="'postcode' is personal data") as refused:
        parse(json.dumps(event).encode())
    assert "SY11" not in str(refused.value)  # the reason never echoes the value


def test_asyncapi_document_declares_every_topic_and_event():
    doc = contract.asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    inbound_dlq = {topics.dead_letter_topic(t) for t in (*topics.INBOUND, *topics.FEEDS)}
    templated = topics.HANDOFFS_PREFIX + "{provider_id}"
    assert addresses == {*topics.core_topics(), templated} | inbound_dlq
    handoffs = next(c for c in doc["channels"].values() if c["address"] == templated)
    assert set(handoffs["parameters"]) == {"provider_id"}
    envelopes = {contract.envelope_model(t).__name__ for t in TYPES}
    assert envelopes <= set(doc["components"]["schemas"])
    keys = [*doc["components"]["schemas"], *doc["components"]["messages"]]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", k) for k in keys), keys


def test_check_docs_reports_missing_changed_and_stale_files(tmp_path: Path):
    assert len(contract.check_docs(tmp_path)) == len(TYPES) + 1  # nothing written yet
    written = contract.write_docs(tmp_path)
    assert contract.check_docs(tmp_path) == []
    assert all(p.read_text().endswith("}\n") for p in written)
    schema = tmp_path / contract.SCHEMAS_DIR / f"{TYPES[0]}.json"
    schema.write_text(schema.read_text().replace('"$id"', '"$id" '))
    stale = tmp_path / contract.SCHEMAS_DIR / "linkway.referral.retired.v1.json"
    stale.write_text("{}\n")
    assert contract.check_docs(tmp_path) == [
        str(contract.SCHEMAS_DIR / f"{TYPES[0]}.json"),
        str(contract.SCHEMAS_DIR / stale.name),
    ]
    contract.write_docs(tmp_path)
    assert contract.check_docs(tmp_path) == [] and not stale.exists()


def test_partner_guide_lists_every_event_type_with_its_schema():
    guide = GUIDE.read_text()
    missing = [t for t in TYPES if f"[`{t}`](events/schemas/{t}.json)" not in guide]
    assert not missing, f"add these event types to docs/events.md: {', '.join(missing)}"


def test_partner_guide_lists_every_topic():
    guide = GUIDE.read_text()
    wanted = [*topics.core_topics(), topics.HANDOFFS_PREFIX + "<provider_id>"]
    missing = [t for t in wanted if f"| `{t}` |" not in guide]
    assert not missing, f"add these topics to the table in docs/events.md: {missing}"


def test_partner_guide_code_examples_are_python():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        ast.parse(block)
