"""FHIR (R4; the models are fhir.resources' R4B package, the same for every element used
here) for partners and GP systems: the message back to the referrer
(``message_back``), the facade for partners on FHIR (``facade``) and its errors as
OperationOutcome (``outcome``). docs/fhir.md is the partner's guide."""

FHIR_JSON = "application/fhir+json"
PREFIX = "/fhir"
# Identifier systems for Linkway's pseudonymous ids (URNs: they name, they do not resolve).
REFERRAL_ID = "urn:linkway:referral-id"
HANDOFF_ID = "urn:linkway:handoff-id"
PARTNER_ID = "urn:linkway:partner-id"
SERVICE_ID = "urn:linkway:service-id"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
# Linkway's own codes, where SNOMED CT has none NHS England asks for (docs/fhir.md).
LINKWAY_CODES = "urn:linkway:codesystem:referrer-status"
LINKWAY_REASONS = "urn:linkway:codesystem:reason"
LINKWAY_DELIVERED = "urn:linkway:codesystem:delivered"
