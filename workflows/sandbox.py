"""The sandbox every worker and replayer runs the referral workflow in.

Temporal's sandbox re-imports a workflow's module for each workflow run it starts, so
that module-level state cannot leak between runs. For the referral workflow that copy
was most of what a cached referral held in the worker (``docs/benchmarks.md``, P4): the
module's code objects, a new ``ReferralWorkflow`` class and, on it, a new definition,
signature and closure for every one of its twenty command updates, about 65 KiB per cached
referral. ``workflows.referral`` is therefore passed through like the pathway's rules
and models it imports: one class for every run.

What that asks of ``workflows/referral.py`` (``tests/unit/test_workflow_sandbox.py``
checks the imports): no module-level state that changes after import, and time, ids and
randomness only from ``temporalio.workflow`` (``workflow.now()``, ``workflow.uuid4()``),
as the rules get them through their ``Context``. The sandbox's restricted builtins
(``open`` and the like) still apply to it at run time; its proxies for non-deterministic
module members (``datetime.now``, ``random``) no longer see its code, as they never saw
the rules'.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = ("workflows.referral",)

RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
)
