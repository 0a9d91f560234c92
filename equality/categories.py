"""What equality monitoring asks, in the categories the published standards use. Every
question is optional and person-given: the person chooses whether to answer, and
``prefer_not_to_say`` is an answer, distinct from no answer (``None``).

- Ethnicity: the ONS 2021 Census classification for England and Wales (19 groups, in five
  high-level groups), with an optional write-in for the "any other" groups.
- Sex: the 2021 Census question (female, male).
- Gender identity: the 2021 Census question (the same as the sex registered at birth,
  or not), with an optional write-in.
- Age band: the NHS Digital reporting bands (16-17 ... 85+).
- Disability: the Equality Act 2010 definition, as a yes or no.
- Carer: the 2021 Census unpaid-care question, as a yes or no.
- Long-term conditions: the NHS GP Patient Survey list, any number of them.

The IMD decile is not asked: it is derived from the postcode (``equality.imd``).

These answers are special-category data (UK GDPR art. 9): they live only in the
personal-data store and leave it only as suppressed aggregates (``equality.report``).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PREFER_NOT = "prefer_not_to_say"

Ethnicity = Literal[
    # Asian, Asian British or Asian Welsh
    "asian_bangladeshi",
    "asian_chinese",
    "asian_indian",
    "asian_pakistani",
    "asian_other",
    # Black, Black British, Black Welsh, Caribbean or African
    "black_african",
    "black_caribbean",
    "black_other",
    # Mixed or Multiple ethnic groups
    "mixed_white_and_asian",
    "mixed_white_and_black_african",
    "mixed_white_and_black_caribbean",
    "mixed_other",
    # White
    "white_british",  # English, Welsh, Scottish, Northern Irish or British
    "white_irish",
    "white_gypsy_or_irish_traveller",
    "white_roma",
    "white_other",
    # Other ethnic group
    "other_arab",
    "other_any",
    "prefer_not_to_say",
]
Sex = Literal["female", "male", "prefer_not_to_say"]
GenderIdentity = Literal["same_as_sex_at_birth", "different_from_sex_at_birth", "prefer_not_to_say"]
AgeBand = Literal[
    "16-17",
    "18-24",
    "25-34",
    "35-44",
    "45-54",
    "55-64",
    "65-74",
    "75-84",
    "85+",
    "prefer_not_to_say",
]
YesNo = Literal["yes", "no", "prefer_not_to_say"]
LongTermCondition = Literal[
    "alzheimers_or_dementia",
    "arthritis_or_joint_problem",
    "autism",
    "back_problem",
    "blindness_or_partial_sight",
    "breathing_condition",
    "cancer",
    "deafness_or_hearing_loss",
    "diabetes",
    "heart_condition",
    "high_blood_pressure",
    "kidney_or_liver_disease",
    "learning_disability",
    "mental_health_condition",
    "neurological_condition",
    "other",
    "none",
    "prefer_not_to_say",
]
# One line of text (the pattern of ``infra.text.Line``: no control characters, no line or
# paragraph separators), so a write-in is never a paragraph or a terminal escape.
WriteIn = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
    ),
]


class EqualityMonitoring(BaseModel):
    """One person's answers; every field optional. Personal data: stored encrypted in the
    personal-data store, never in an event, the read model, a log or a workflow."""

    model_config = ConfigDict(extra="forbid")

    age_band: AgeBand | None = None
    sex: Sex | None = None
    gender_identity: GenderIdentity | None = None
    gender_identity_write_in: WriteIn | None = None
    ethnicity: Ethnicity | None = None
    ethnicity_write_in: WriteIn | None = Field(
        default=None, description="for the 'other' groups, in the person's words"
    )
    disability: YesNo | None = None
    carer: YesNo | None = None
    long_term_conditions: list[LongTermCondition] | None = Field(default=None, max_length=20)
    postcode: str | None = Field(
        default=None,
        max_length=10,
        pattern=r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$",
        description="the person's home postcode, only to derive the IMD decile",
    )


# The questions a report counts, each with its categories in the order shown.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "age_band": get_args(AgeBand),
    "sex": get_args(Sex),
    "gender_identity": get_args(GenderIdentity),
    "ethnicity": get_args(Ethnicity),
    "disability": get_args(YesNo),
    "carer": get_args(YesNo),
    "long_term_conditions": get_args(LongTermCondition),
    "imd_decile": tuple(str(d) for d in range(1, 11)),
}
NOT_ANSWERED = "not_answered"
