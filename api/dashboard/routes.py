"""The dashboard's routes, under ``/dashboard``.

- ``GET /dashboard``: the page. It holds no data, so it needs no token: it asks for one,
  keeps it in the tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on
  every fetch (docs/reporting.md, "Signing in"). Never a cookie, so no request can carry
  it without the page's script asking, and never a URL, so no log can hold it.
- ``GET /dashboard/panels/{panel}``: one KPI panel as chart-ready JSON, for a contract
  manager (everything) or a Tier One partner (its own), with the reports' filters
  (contract, partner, locality, source, practice, support level, period); ``.csv`` the
  same numbers as CSV. The page's filter form re-fetches every panel with them.
- ``GET /dashboard/definitions``: docs/reporting.md, rendered (``api.dashboard.definitions``).
- ``/dashboard/static/...``: the script, the stylesheet and the vendored chart library
  (mounted by ``api.app``), all shipped in the package: nothing loads from elsewhere.

The page's Content-Security-Policy lets it load and connect to this server only, and run
no inline script, so a script injected into the page could neither run nor send the token
elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from api.auth import Caller, require
from api.dashboard import definitions
from api.dashboard.panels import Panel, PanelName, as_csv
from api.dashboard.sources import SOURCES, definition_url, load
from api.deps import deps
from api.problems import Problem, responses
from api.reporting import FiltersDep

STATIC = Path(__file__).parent / "static"
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
TEMPLATES = Environment(
    loader=PackageLoader("api.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
)

# The filter form: each field is the query parameter GET /reports/{kpi} takes.
FILTERS = [
    {"name": "contract", "label": "Contract", "type": "text"},
    {"name": "partner", "label": "Partner", "type": "text"},
    {"name": "locality", "label": "Locality", "type": "text"},
    {"name": "source", "label": "Referral source", "type": "text"},
    {"name": "practice", "label": "Referring practice", "type": "text"},
    {"name": "support_level", "label": "Support level", "type": "text"},
    {"name": "from", "label": "From", "type": "date"},
    {"name": "to", "label": "To", "type": "date"},
]

router = APIRouter(prefix="/dashboard", tags=["dashboard"])
Viewer = Annotated[Caller, Depends(require("contract_manager", "tier_one"))]
HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "An HTML page"}
}


@router.get("", response_class=HTMLResponse, responses=HTML)
def dashboard_page(request: Request) -> HTMLResponse:
    """The dashboard page (no data in it; it signs in and fetches the panels)."""
    panels = [
        {"name": name, "title": s.title, "definition": definition_url(name)}
        for name, s in SOURCES.items()
    ]
    html = TEMPLATES.get_template("dashboard.html").render(panels=panels, filters=FILTERS)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/definitions", response_class=HTMLResponse, responses=HTML)
def dashboard_definitions() -> HTMLResponse:
    """How every number on the dashboard is computed (docs/reporting.md)."""
    body = definitions.render()
    html = TEMPLATES.get_template("definitions.html").render(body=body)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get(
    "/panels/{panel}.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The panel's numbers"},
        **responses(401, 403, 404, 422, 429),
    },
)
def dashboard_panel_csv(
    panel: PanelName, caller: Viewer, request: Request, filters: FiltersDep
) -> Response:
    found = load(panel, deps(request), caller, filters)
    if not found.available:
        raise Problem(404, "Not available", "this KPI's source is not on this server yet")
    return Response(
        as_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="linkway-{panel}.csv"'},
    )


@router.get("/panels/{panel}", response_model=Panel, responses=responses(401, 403, 422, 429))
def dashboard_panel(
    panel: PanelName, caller: Viewer, request: Request, filters: FiltersDep
) -> Panel:
    """One KPI panel, scoped to the caller and filtered as ``GET /reports/{kpi}`` is (a
    Tier One partner's ``partner`` is its own, whatever it asks): ``available`` false
    (with ``reason``) when its source is not on this server yet."""
    return load(panel, deps(request), caller, filters)
