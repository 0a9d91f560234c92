"""The service directory: Tier Two provider organisations and their services, in the shape
of Open Referral UK / HSDS, with each service's capacity (open, waitlist with a band, or
closed with a reason).

- ``hsds``: the data shapes (organization, service, location, categories, capacity);
- ``repository.DirectoryRepository``: read and write them in a caller's session;
- ``importer``: import an HSDS JSON file; ``seed_demo`` loads the demo directory;
- ``check_prescriptions`` / ``check_signposts`` / ``provider_topics``: what the plan
  route and start-up ask.

Errors are drawn in ``directory.errors``.
"""

from directory.errors import (
    DirectoryError,
    DirectoryFileError,
    PrescriptionRejected,
    UnknownOrganization,
)
from directory.importer import import_file, seed_demo
from directory.prescribing import check_prescriptions, check_signposts, provider_topics

__all__ = [
    "DirectoryError",
    "DirectoryFileError",
    "PrescriptionRejected",
    "UnknownOrganization",
    "check_prescriptions",
    "check_signposts",
    "import_file",
    "provider_topics",
    "seed_demo",
]
