"""The postcode -> Index of Multiple Deprivation decile lookup: data shipped as a file,
read once, no network.

The published sources are the English Indices of Deprivation 2019 (MHCLG, 26 September
2019), File 7 ("All IoD2019 Scores, Ranks, Deciles and Population Denominators": the IMD
decile of each of England's 32,844 LSOAs, 2011 boundaries), and an ONS postcode to LSOA
(2011) lookup (the ONS Postcode Directory, or the "PCD to OA to LSOA to MSOA to LAD"
best-fit file). Neither is on a package registry, so Linkway ships the format, the
loader and a small sample; ``linkway imd`` joins the two published files into the
compact lookup an operator points ``LINKWAY_IMD_LOOKUP`` at (docs/equality.md).

The lookup file (optionally gzipped)::

    # linkway-imd-lookup v1
    # source: <where the deciles and the postcode lookup came from>
    # date: <the IMD release date>
    postcode,imd_decile
    SY11AA,4

Postcodes are upper case without spaces, sorted; decile 1 is the most deprived tenth of
LSOAs. In memory it is one fixed-width block of postcodes and one of deciles, searched
by bisection: 8 bytes a postcode, a fraction of what a dict of strings would hold.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAGIC = "# linkway-imd-lookup v1"
SAMPLE = Path(__file__).parent / "data" / "imd_lookup_sample.csv"
WIDTH = 7  # the longest postcode without its space: "SW1A1AA"
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
# Column names the published files use (upper or lower case), first match wins.
POSTCODE_COLUMNS = ("pcds", "pcd", "pcd7", "pcd8", "postcode")
LSOA_COLUMNS = ("lsoa11cd", "lsoa11", "lsoa code (2011)", "lsoa_code")
DECILE_PREFIX = "index of multiple deprivation (imd) decile"


class ImdFileError(ValueError):
    """A lookup file or published file that cannot be read; the message says why."""


def normalise(postcode: str) -> str | None:
    """``"sy11 1aa"`` -> ``"SY111AA"``; None for something that is not a UK postcode."""
    compact = "".join(postcode.split()).upper()
    return compact if _POSTCODE.fullmatch(compact) else None


@dataclass(frozen=True)
class ImdLookup:
    source: str
    date: str
    _keys: bytes  # sorted postcodes, each padded to WIDTH
    _deciles: bytes

    @property
    def size(self) -> int:
        return len(self._deciles)

    @property
    def is_sample(self) -> bool:
        return self.source.lower().startswith("sample")

    def decile(self, postcode: str | None) -> int | None:
        """The IMD decile of a postcode, or None when it is not in the lookup."""
        key = normalise(postcode or "")
        if key is None:
            return None
        wanted = key.ljust(WIDTH).encode()
        lo, hi = 0, self.size
        while lo < hi:
            mid = (lo + hi) // 2
            if self._keys[mid * WIDTH : (mid + 1) * WIDTH] < wanted:
                lo = mid + 1
            else:
                hi = mid
        if lo < self.size and self._keys[lo * WIDTH : (lo + 1) * WIDTH] == wanted:
            return self._deciles[lo]
        return None

    @classmethod
    def of(cls, source: str, date: str, rows: Iterable[tuple[str, int]]) -> ImdLookup:
        pairs = sorted({k: d for k, d in rows}.items())
        return cls(
            source,
            date,
            b"".join(k.ljust(WIDTH).encode() for k, _ in pairs),
            bytes(d for _, d in pairs),
        )


def _text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8-sig"))


def read(path: Path) -> ImdLookup:
    """Read a lookup file; ``ImdFileError`` names the line that is wrong."""
    lines = _text(path)
    if lines.readline().strip() != MAGIC:
        raise ImdFileError(f"{path.name} is not a Linkway IMD lookup (first line: {MAGIC})")
    meta: dict[str, str] = {}
    rows: list[tuple[str, int]] = []
    for number, line in enumerate(lines, start=2):
        line = line.strip()
        if line.startswith("#"):
            name, _, value = line[1:].partition(":")
            meta[name.strip()] = value.strip()
        elif line and line != "postcode,imd_decile":
            postcode, _, decile = line.partition(",")
            key = normalise(postcode)
            if key is None or not decile.isdigit() or not 1 <= int(decile) <= 10:
                raise ImdFileError(f"{path.name} line {number}: want postcode,decile 1-10")
            rows.append((key, int(decile)))
    if "source" not in meta or "date" not in meta:
        raise ImdFileError(f"{path.name} must say its source and date in '# source:' lines")
    return ImdLookup.of(meta["source"], meta["date"], rows)


@lru_cache(maxsize=2)
def load(path: str | None = None) -> ImdLookup:
    """The configured lookup (``LINKWAY_IMD_LOOKUP``), or the packaged sample."""
    return read(Path(path) if path else SAMPLE)


# --- building the lookup from the published files -------------------------------------


def _column(header: list[str], names: Iterable[str], what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise ImdFileError(f"no {what} column (looked for {', '.join(names)})")


def deciles_by_lsoa(file7: Iterable[str]) -> dict[str, int]:
    """LSOA code -> IMD decile, from the IoD2019 File 7 CSV."""
    reader = csv.reader(file7)
    header = next(reader)
    lsoa = _column(header, LSOA_COLUMNS, "LSOA code")
    decile = next(
        (i for i, h in enumerate(header) if h.strip().lower().startswith(DECILE_PREFIX)), None
    )
    if decile is None:
        raise ImdFileError("no 'Index of Multiple Deprivation (IMD) Decile' column")
    return {row[lsoa].strip(): int(row[decile]) for row in reader if row}


def join(postcodes: Iterable[str], deciles: dict[str, int]) -> Iterator[tuple[str, int]]:
    """(postcode, decile) for every English postcode of an ONS postcode -> LSOA file whose
    LSOA has a decile (Welsh, Scottish and Northern Irish postcodes have none in IMD 2019)."""
    reader = csv.reader(postcodes)
    header = next(reader)
    pcd = _column(header, POSTCODE_COLUMNS, "postcode")
    lsoa = _column(header, LSOA_COLUMNS, "LSOA code")
    for row in reader:
        if len(row) <= max(pcd, lsoa):
            continue
        key, decile = normalise(row[pcd]), deciles.get(row[lsoa].strip())
        if key is not None and decile is not None:
            yield key, decile


def write(path: Path, source: str, date: str, rows: Iterable[tuple[str, int]]) -> int:
    """Write a lookup file (gzipped when ``path`` ends in .gz); returns how many rows."""
    lookup = ImdLookup.of(source, date, rows)
    out = io.StringIO()
    out.write(f"{MAGIC}\n# source: {source}\n# date: {date}\npostcode,imd_decile\n")
    for i in range(lookup.size):
        key = lookup._keys[i * WIDTH : (i + 1) * WIDTH].decode().strip()
        out.write(f"{key},{lookup._deciles[i]}\n")
    data = out.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return lookup.size
