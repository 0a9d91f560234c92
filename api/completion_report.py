"""The completion report as a document a link worker gives to the person.

``GET /referrals/{referral_id}/completion-report`` (``tier_one``, the referral's own
localities) renders the latest episode's report as one self-contained HTML page: inline
styles, no script, no image, nothing fetched from anywhere, so it prints or saves as it
is. The pseudonymous report comes from the referral's workflow; the person's name and
own words come from the personal-data store, and both reads are audited (purpose
``completion_report``). Every value is HTML-escaped.
"""

from __future__ import annotations

import asyncio
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from api.commands import LinkWorker
from api.deps import deps
from api.people import audit_failed
from api.personal_data import Access, AuditFailed
from api.problems import Problem, responses
from api.scope import visible
from events.completion import CompletionReported
from pathway.state import CaseState
from workflows import referral_workflow_id
from workflows.referral import ReferralWorkflow

router = APIRouter(prefix="/referrals", tags=["people"])
PURPOSE = "completion_report"
_DRAFT = "<p><strong>Draft: to go over together before it is final.</strong></p>"
_ACHIEVED = {
    "achieved": "Achieved",
    "partly_achieved": "Partly achieved",
    "not_achieved": "Not achieved",
}


@router.get(
    "/{referral_id}/completion-report",
    response_class=HTMLResponse,
    responses={
        **responses(401, 403, 404, 429, 503),
        200: {"content": {"text/html": {}}, "description": "The report, one HTML page"},
    },
    summary="Download the completion report and ongoing plan (HTML; audited read)",
)
async def completion_report(referral_id: str, request: Request, caller: LinkWorker) -> HTMLResponse:
    d = deps(request)
    with Session(d.engine) as session:
        row = visible(session, caller, referral_id)
    handle = d.client.get_workflow_handle(referral_workflow_id(row.referral_id))
    state: CaseState = await handle.query(ReferralWorkflow.get_state)
    report = state.episode.completion_report
    if report is None:
        raise Problem(404, "Not found", "no completion report has been recorded for this episode")
    access = Access(caller.actor_id, caller.partner_id, PURPOSE)
    try:
        person = await asyncio.to_thread(d.people.get, row.referral_id, access) or {}
        words = ""
        if state.episode.own_words_note_id:
            notes = await asyncio.to_thread(d.people.notes, row.referral_id, access)
            words = next(
                (n["text"] for n in notes if n["note_id"] == state.episode.own_words_note_id), ""
            )
    except AuditFailed:
        raise audit_failed() from None
    name = " ".join(filter(None, [person.get("given_name"), person.get("family_name")]))
    return HTMLResponse(render(report, name, words), headers={"Cache-Control": "no-store"})


def render(report: CompletionReported, name: str, words: str) -> str:
    """One self-contained page; every value escaped."""
    e = escape
    goals = (
        "".join(f"<li>Goal {g.goal}: {e(_ACHIEVED[g.achieved])}</li>" for g in report.goals)
        or "<li>No goals recorded</li>"
    )
    measures = "".join(
        "<tr>"
        f"<td>{e(m.instrument)}</td>"
        f"<td>{e(_score(m.baseline))}</td><td>{e(_score(m.review))}</td>"
        f"<td>{e(_score(m.followup))}</td>"
        f"<td>{e(_better(m.improved_at_review))}</td><td>{e(_better(m.improved_at_followup))}</td>"
        "</tr>"
        for m in report.measures
    )
    services = "".join(
        f"<tr><td>{e(s.service_id)}</td><td>{e(s.provider_id)}</td><td>{e(s.status)}</td>"
        f"<td>{s.sessions_attended}</td></tr>"
        for s in report.services
    )
    plan = "".join(f"<li>{e(code.replace('_', ' '))}</li>" for code in report.ongoing_plan)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Your social prescribing summary</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;line-height:1.5}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #999;padding:.3rem}}
blockquote{{border-left:4px solid #005eb8;margin:0;padding-left:1rem}}
</style></head><body>
<h1>Your social prescribing summary</h1>
{_DRAFT if report.status == "draft" else ""}
<p>For {e(name) or "you"}. Episode {report.episode}, ended
{e(report.occurred_at.strftime("%d %B %Y"))}.</p>
<h2>Your goals</h2><ul>{goals}</ul>
<h2>How you have been</h2>
<table><tr><th>Measure</th><th>Start</th><th>Review</th><th>Follow-up</th>
<th>Better at review</th><th>Better at follow-up</th></tr>{measures}</table>
<h2>Services you used</h2>
<table><tr><th>Service</th><th>Provider</th><th>Status</th><th>Sessions attended</th></tr>
{services}</table>
<p>Sessions attended in all: {report.attended_sessions}</p>
<h2>In your own words</h2>
<blockquote>{e(words) or "Not recorded"}</blockquote>
<h2>Your ongoing plan</h2><ul>{plan or "<li>Not recorded</li>"}</ul>
</body></html>
"""


def _score(scores: object) -> str:
    if scores is None:
        return "-"
    raw = getattr(scores, "raw", {})
    derived = getattr(scores, "derived", {})
    total = raw.get("total", derived.get("total"))
    return str(total) if total is not None else ", ".join(f"{k} {v}" for k, v in raw.items())


def _better(improved: bool | None) -> str:
    return "-" if improved is None else "Yes" if improved else "No"
