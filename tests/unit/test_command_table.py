"""One table of casework commands (``pathway.rules.COMMANDS``) drives the rule dispatch,
the workflow's updates and validators, and the HTTP routes; these tests fail as soon as
any of them disagrees with the table."""

from __future__ import annotations

import typing

from fastapi.routing import APIRoute
from temporalio.workflow import _Definition

from api import commands as routes
from pathway import commands as cmd
from pathway import rules
from workflows.referral import ReferralWorkflow, command_update

NOT_COMMANDS = {"confirm_received"}  # the creation handshake, not a link worker's command


def test_every_command_model_has_exactly_one_row() -> None:
    models = [spec.command for spec in rules.COMMANDS]
    assert len(models) == len(set(models))
    assert set(models) == set(typing.get_args(cmd.AnyCommand))


def test_update_names_and_paths_are_unique() -> None:
    assert len({spec.update for spec in rules.COMMANDS}) == len(rules.COMMANDS)
    assert len({spec.path for spec in rules.COMMANDS}) == len(rules.COMMANDS)


def test_the_workflow_has_one_validated_update_per_row_and_no_other() -> None:
    updates = _Definition.from_class(ReferralWorkflow).updates
    assert set(updates) - NOT_COMMANDS == {spec.update for spec in rules.COMMANDS}
    for spec in rules.COMMANDS:
        update = updates[spec.update]
        assert update.arg_types == [spec.command], spec.update
        assert update.validator is not None, f"{spec.update} has no validator"


def test_clients_reach_each_update_by_reference() -> None:
    for spec in rules.COMMANDS:
        assert command_update(spec.command) is getattr(ReferralWorkflow, spec.update)


def test_the_api_has_one_post_route_per_row_named_after_its_update() -> None:
    posted = {
        route.operation_id: route.path
        for route in routes.router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    }
    assert posted == {
        spec.update: f"/referrals/{{referral_id}}/{spec.path}" for spec in rules.COMMANDS
    }
