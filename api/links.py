"""OpenAPI links: which later calls a response's ids feed (OpenAPI 3.1, "Link Object").

``POST /referrals`` answers with the referral's id; every operation on
``/referrals/{referral_id}...`` takes it. Declaring that lets generated clients and
schemathesis' stateful mode chain calls as a client does: make a referral, then read it,
command it, write its notes. Added to the document the app serves (``api.app``).
"""

from __future__ import annotations

from typing import Any

REFERRAL_SCOPED = "/referrals/{referral_id}"
CREATED_BY = ("/referrals", "post", ("201", "200"))  # 200: a re-referral of the same case
METHODS = ("get", "post", "put", "patch", "delete")


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with links from the referral-creating responses to every operation
    scoped to one referral (the id from the response's ``referral_id``)."""
    paths = document["paths"]
    links: dict[str, Any] = {}
    for path, item in sorted(paths.items()):
        if not (path == REFERRAL_SCOPED or path.startswith(REFERRAL_SCOPED + "/")):
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            links[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {"referral_id": "$response.body#/referral_id"},
                "description": f"{method.upper()} {path} for the referral just made",
            }
    path, method, statuses = CREATED_BY
    for status in statuses:
        response = paths[path][method]["responses"].get(status)
        if response is not None and links:
            response["links"] = links
    return document
