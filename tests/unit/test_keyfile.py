"""The embedded default's generated keys under processes starting at once."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from infra.keyfile import generated_once

PROCESSES = 8


def _race(path: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    out.put(generated_once(Path(path), _slow_key))


def _slow_key() -> bytes:
    """A key that takes a while to make (an EC key does), so the racers overlap."""
    time.sleep(0.05)
    return secrets.token_hex(32).encode()


@pytest.mark.parametrize("attempt", range(3))
def test_processes_starting_at_once_all_read_one_whole_key(tmp_path: Path, attempt: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier, out = context.Barrier(PROCESSES), context.Queue()
    path = tmp_path / "shared.key"
    racers = [
        context.Process(target=_race, args=(str(path), barrier, out)) for _ in range(PROCESSES)
    ]
    for racer in racers:
        racer.start()
    keys = [out.get(timeout=30) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
    assert path.read_bytes() == keys[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.key"], "no candidate left behind"


def test_a_generated_key_is_never_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "secret.key"
    assert generated_once(path, lambda: b"first") == b"first"
    assert path.stat().st_mode & 0o777 == 0o600
    assert generated_once(path, lambda: b"second") == b"first", "generated once, then kept"
