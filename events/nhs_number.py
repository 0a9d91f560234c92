"""The NHS number's rule, one for both doors that take one: the API's person record and
the distal-activity feed. Neither number ever travels in an event; this module only
checks and normalises.

Ten ASCII digits whose last is the modulus 11 check digit of the first nine. Only ASCII:
``str.isdigit`` also takes fullwidth or Arabic-Indic digits, which ``int`` reads as the
same number but which would be stored, and blind-indexed, as a different one. Spaces and
hyphens, as people write the number (``943 476 5919``), are ignored.
"""

from __future__ import annotations

import unicodedata


def nhs_number_is_valid(number: str) -> bool:
    """Whether ``number`` (already without spaces) is ten digits with a valid check digit."""
    if len(number) != 10 or not (number.isascii() and number.isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(number[9])


def normalised_nhs_number(text: str) -> str | None:
    """``text`` without spaces and hyphens if that is a valid NHS number, else None."""
    digits = text.replace(" ", "").replace("-", "")
    return digits if nhs_number_is_valid(digits) else None


def ascii_nhs_number(value: str) -> str | None:
    """``value`` with spaces and hyphens dropped and every decimal digit, whatever its
    script (fullwidth, Arabic-Indic...), written 0-9; None if anything else is in it."""
    digits = []
    for ch in value:
        if ch.isspace() or ch in "-\u2010\u2011\u2012\u2013\uff0d":
            continue
        digit = unicodedata.decimal(ch, None)
        if digit is None:
            return None
        digits.append(str(digit))
    return "".join(digits)
