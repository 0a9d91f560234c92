"""Temporal workflows. Names used by clients and workers are defined once, here."""

RECORD_TRANSITION = "record_transition"  # the activity; history carries it: never rename

TASK_QUEUE = "linkway-pathway"
REFERRAL_WORKFLOW = "ReferralWorkflow"
WORKFLOW_ID_PREFIX = "referral-"


def referral_workflow_id(referral_id: str) -> str:
    """The workflow id is derived from the pseudonymous referral id, never from personal data,
    so starting the same referral twice finds the one workflow."""
    return WORKFLOW_ID_PREFIX + referral_id
