"""The equality monitoring report: how many people gave each answer to each question,
with small-number suppression (``equality.suppression``), so it can be shown to a
commissioner or published. People are counted once per question (once per condition
for long-term conditions, where one person may name several); ``not_answered`` counts
those who gave no answer, so every question's total is everyone in the report.

Pure: the answers come in already decrypted from the personal-data store, and only the
suppressed counts go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from equality.categories import NOT_ANSWERED, QUESTIONS
from equality.imd import ImdLookup
from equality.suppression import THRESHOLD, Shown, suppress


class QuestionTable(BaseModel):
    question: str
    counts: dict[str, Shown]  # category -> people, or "<5"
    total: Shown


class EqualityReport(BaseModel):
    people: Shown
    suppression_threshold: int = THRESHOLD
    imd_source: str
    imd_date: str
    questions: list[QuestionTable]


def counts(answers: Iterable[Mapping[str, Any]], imd: ImdLookup) -> dict[str, dict[str, int]]:
    """Raw counts per question and category (unsuppressed: never shown as they are)."""
    tables = {q: dict.fromkeys((*cats, NOT_ANSWERED), 0) for q, cats in QUESTIONS.items()}
    for answer in answers:
        given = dict(answer)
        decile = imd.decile(given.get("postcode"))
        given["imd_decile"] = str(decile) if decile is not None else None
        for question, table in tables.items():
            value = given.get(question)
            if question == "long_term_conditions" and value:
                for condition in dict.fromkeys(value):
                    table[condition] += 1
            else:
                table[value if value in table else NOT_ANSWERED] += 1
    return tables


def report(answers: Iterable[Mapping[str, Any]], imd: ImdLookup) -> EqualityReport:
    people = list(answers)
    questions = []
    for question, table in counts(people, imd).items():
        shown, total = suppress(table)
        if question == "long_term_conditions":
            # One person may name several: the total is people, not the cells' sum.
            _, total = suppress({"people": len(people)})
        questions.append(QuestionTable(question=question, counts=shown, total=total))
    _, everyone = suppress({"people": len(people)})
    return EqualityReport(
        people=everyone, imd_source=imd.source, imd_date=imd.date, questions=questions
    )
