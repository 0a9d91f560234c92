"""``linkway imd``: build the postcode -> IMD decile lookup from the published files
(docs/equality.md), offline, for ``LINKWAY_IMD_LOOKUP`` to point at."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.settings import Settings

DEFAULT_SOURCE = (
    "English Indices of Deprivation 2019 (MHCLG), File 7 IMD deciles by LSOA 2011, "
    "joined to the ONS postcode to LSOA 2011 lookup"
)


def imd(settings: Settings, args: argparse.Namespace) -> int:
    """Build the postcode to IMD decile lookup from the published IoD2019 and ONS files."""
    from equality import imd as lookup

    try:
        with (
            Path(args.deprivation).open(encoding="utf-8-sig", newline="") as file7,
            Path(args.postcodes).open(encoding="utf-8-sig", newline="") as postcodes,
        ):
            rows = lookup.join(postcodes, lookup.deciles_by_lsoa(file7))
            count = lookup.write(Path(args.out), args.source, args.date, rows)
    except (OSError, lookup.ImdFileError) as exc:
        print(f"linkway imd: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} postcodes to {args.out}; set LINKWAY_IMD_LOOKUP={args.out}")
    return 0


def imd_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deprivation", required=True, help="IoD2019 File 7 CSV (deciles by LSOA)")
    parser.add_argument(
        "--postcodes", required=True, help="ONS postcode to LSOA 2011 CSV (pcds, lsoa11cd)"
    )
    parser.add_argument("--out", required=True, help="the lookup to write (.csv or .csv.gz)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="recorded in the file")
    parser.add_argument("--date", default="2019-09-26", help="the IMD release date")
