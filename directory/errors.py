"""The directory's errors, drawn once::

DirectoryError (ValueError)      the message says what is wrong, for a person to act on
├── UnknownOrganization          a service names an organization the directory lacks
├── DirectoryFileError           an HSDS file that cannot be read or does not fit
└── PrescriptionRejected         a plan prescribes an unknown, mismatched or closed service
"""

from __future__ import annotations


class DirectoryError(ValueError):
    pass


class UnknownOrganization(DirectoryError):
    pass


class DirectoryFileError(DirectoryError):
    pass


class PrescriptionRejected(DirectoryError):
    """``str()`` names every prescription refused and why (a closed service's reason)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]
