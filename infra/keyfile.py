"""Keys the embedded default generates once and keeps beside its data.

Several processes may start at once on one data directory (`linkway dev`, or two
replicas of the API, the worker or a consumer), and each may find a key missing. If each
wrote its own, one would sign or encrypt with a key a moment later replaced: tokens that
no longer verify, checkpoints that no longer check, personal data nobody can decrypt.
So a key file appears whole or not at all: each process writes its candidate to a
private temporary file (mode 0600 from the start) and hard-links it into place; the first
link wins, and every process then reads the winner's key.

Production configures its keys (``LINKWAY_PII_KEYS``, ``LINKWAY_JWKS_URL``,
``LINKWAY_PAYMENTS_CHECKPOINT_KEY``, ...) and never comes here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def generated_once(path: Path, generate: Callable[[], bytes]) -> bytes:
    """The bytes in ``path``, after writing ``generate()`` there if no process has yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, candidate = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(generate())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
        finally:
            os.unlink(candidate)
    return path.read_bytes()
