"""The completion report as a document a link worker gives to the person.

``GET /referrals/{referral_id}/completion-report`` (``tier_one``, the referral's own
localities) renders the latest episode's report as one self-contained HTML page: inline
styles, no script, no image, nothing fetched from anywhere, so it prints or saves as it
is. The pseudonymous report comes from the referral's workflow; the Well-being Action
Fund grants the person had in the episode (approved or spent: the purpose, the goal and
the amount, never the supplier) from the fund's tables; the person's name and
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
from api.params import IdPath
from api.people import audit_failed
from api.personal_data import Access, AuditFailed
from api.problems import Problem, responses
from api.scope import visible
from events.completion import CompletionReported, GoalResult
from fund.views import GrantView
from pathway.rules.goals import UNSPECIFIED
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
async def completion_report(
    referral_id: IdPath, request: Request, caller: LinkWorker
) -> HTMLResponse:
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
        words, goal_words = "", {}
        # The goals' own words are case notes too: read with the rest, in one audited read.
        wanted = {g.number: g.words_note_id for g in state.episode.goals if g.words_note_id}
        if state.episode.own_words_note_id or wanted:
            notes = await asyncio.to_thread(d.people.notes, row.referral_id, access)
            text = {n["note_id"]: n["text"] for n in notes}
            words = text.get(state.episode.own_words_note_id or "", "")
            goal_words = {n: text[i] for n, i in wanted.items() if i in text}
    except AuditFailed:
        raise audit_failed() from None
    name = " ".join(filter(None, [person.get("given_name"), person.get("family_name")]))
    grants = await asyncio.to_thread(
        d.fund.referral_grants, row.referral_id, state.episode.opened_at
    )
    page = render(report, name, words, goal_words, grants)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _goal_of(grant: GrantView) -> str:
    """The goal a grant was for, as it was when asked for: a plan revised since may have
    given its number to another goal."""
    category = grant.goal_category
    about = f" ({category.replace('_', ' ')})" if category and category != UNSPECIFIED else ""
    return f"Goal {grant.goal_id}{about}"


def render(
    report: CompletionReported,
    name: str,
    words: str,
    goal_words: dict[int, str] | None = None,
    grants: list[GrantView] | None = None,
) -> str:
    """One self-contained page; every value escaped. A goal shows its category and, if
    the person gave them, their own words for it; a grant its purpose, its goal and its
    amount (what was spent, or what is approved), never the supplier."""
    e = escape
    said = goal_words or {}
    fund = "".join(
        f"<tr><td>{e(g.purpose.replace('_', ' '))}</td><td>{e(_goal_of(g))}</td>"
        f"<td>{e(_pounds(g.spent_pence if g.status == 'spent' else g.amount_pence))}</td>"
        f"<td>{'Paid' if g.status == 'spent' else 'Approved'}</td></tr>"
        for g in grants or []
    )
    fund_total = sum(g.spent_pence if g.status == "spent" else g.amount_pence for g in grants or [])
    fund_section = (
        "<h2>Help from the Well-being Action Fund</h2>"
        "<table><tr><th>For</th><th>Goal</th><th>Amount</th><th>Status</th></tr>"
        f"{fund}</table><p>In all: {e(_pounds(fund_total))}</p>"
        if fund
        else ""
    )

    def goal(g: GoalResult) -> str:
        about = f" ({e(g.category.replace('_', ' '))})" if g.category else ""
        own = f": &ldquo;{e(said[g.goal])}&rdquo;" if g.goal in said else ""
        return f"<li>Goal {g.goal}{about}{own}: {e(_ACHIEVED[g.achieved])}</li>"

    goals = "".join(goal(g) for g in report.goals) or "<li>No goals recorded</li>"
    measures = "".join(
        "<tr>"
        f"<td>{e(m.instrument)}</td>"
        f"<td>{e(_score(m.baseline))}</td><td>{e(_score(m.midpoint))}</td>"
        f"<td>{e(_score(m.review))}</td>"
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
<table><tr><th>Measure</th><th>Start</th><th>Mid-point</th><th>Review</th><th>Follow-up</th>
<th>Better at review</th><th>Better at follow-up</th></tr>{measures}</table>
<h2>Services you used</h2>
<table><tr><th>Service</th><th>Provider</th><th>Status</th><th>Sessions attended</th></tr>
{services}</table>
<p>Sessions attended in all: {report.attended_sessions}</p>
{fund_section}
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
    total = raw.get("total", raw.get("profile", derived.get("total")))
    if isinstance(total, int | float):
        return f"{total:g}"  # 23.0 reads as 23
    return str(total) if total is not None else ", ".join(f"{k} {v}" for k, v in raw.items())


def _pounds(pence: int) -> str:
    return f"\u00a3{pence // 100:,}.{pence % 100:02d}"


def _better(improved: bool | None) -> str:
    return "-" if improved is None else "Yes" if improved else "No"
