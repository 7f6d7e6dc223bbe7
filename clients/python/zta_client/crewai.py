"""ZTA for CrewAI: every tool call of every agent of a crew is checked first.

``protect_tools(client, credentials)`` registers a CrewAI before-tool-call hook (global, as
CrewAI's hooks are) that asks ZTA whether the agent may call the tool with these arguments. The
agent is found by its ``role``, and checked with the credential ``credentials`` holds for that
role; an agent with no credential there is refused. A refused call does not run: the agent sees
``Tool execution blocked`` followed by ZTA's reason and the request id of the audit record.

CrewAI lets a tool call through when a hook raises an unexpected error ("fail-open"), so this
hook never raises one: any failure, the client's included, refuses the call.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping

from crewai.hooks import (
    ToolCallHookContext,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)

from . import Client, Credential, Decision

__all__ = ["protect_tools"]

_log = logging.getLogger("zta_client.crewai")

# Refusals whose "blocked" result CrewAI has not shown yet, at most (oldest forgotten first).
_MAX_REMEMBERED = 1024


def protect_tools(client: Client, credentials: Mapping[str, Credential]) -> Callable[[], None]:
    """Checks every CrewAI tool call with ZTA from now on; returns a function that stops it."""
    credentials = dict(credentials)
    # Why each refused call was refused, until CrewAI gives the agent its "blocked" result.
    # Keyed by the call's input dict, which the before and after hooks share; holding the dict
    # keeps its id from being reused by another call's while the entry lives.
    refusals: dict[int, tuple[Any, Decision]] = {}
    lock = threading.Lock()

    def before(context: ToolCallHookContext) -> bool | None:
        try:
            decision = _check(client, credentials, context)
        except Exception as error:  # noqa: BLE001 - CrewAI would let the call through
            decision = Decision(False, None, f"the ZTA check failed: {error}")
        if decision.allowed:
            return None
        _log.warning("ZTA refused tool %s: %s", context.tool_name, decision.describe())
        with lock:
            if len(refusals) >= _MAX_REMEMBERED:
                refusals.pop(next(iter(refusals)))
            refusals[id(context.tool_input)] = (context.tool_input, decision)
        return False

    def after(context: ToolCallHookContext) -> str | None:
        with lock:
            entry = refusals.get(id(context.tool_input))
            if entry is None or entry[0] is not context.tool_input:
                return None
            del refusals[id(context.tool_input)]
        return f"{context.tool_result}. ZTA {entry[1].describe()}"

    register_before_tool_call_hook(before)
    register_after_tool_call_hook(after)

    def stop() -> None:
        unregister_before_tool_call_hook(before)
        unregister_after_tool_call_hook(after)

    return stop


def _check(client: Client, credentials: Mapping[str, Credential], context: ToolCallHookContext) -> Decision:
    role = getattr(context.agent, "role", None)
    credential = credentials.get(role) if isinstance(role, str) else None
    if credential is None:
        return Decision(False, None, f"no ZTA credential for the agent {role!r}")
    arguments: Any = context.tool_input if isinstance(context.tool_input, Mapping) else {}
    return client.check_tool_call(credential, context.tool_name, arguments)
