"""ZTA for AutoGen: an intervention handler that checks every message and tool call an agent
sends through an ``autogen_core`` runtime.

Give it to the runtime: ``SingleThreadedAgentRuntime(intervention_handlers=[handler])``. Each
message sent (``send_message``) or published (``publish_message``) is checked as the sending
agent, found by its AgentId's ``type`` in ``credentials``:

* a ``FunctionCall`` (the tool call an agent sends to a ``ToolAgent``) is the tool call of
  ``call.name`` with ``call.arguments`` (visible to policy as ``context.arguments.*``);
* any other message sent to an agent is ``send_message`` to that agent (the recipient's
  ``type`` as the ZTA agent id), named by the message's class;
* a published message is ``send_message`` with the topic as its resource
  (``{"type": "topic", "id": <topic type>}``).

A refused message is dropped: the sender's ``send_message`` raises ``MessageDroppedException``
and the recipient never sees it. Messages from outside the runtime (no sender) are checked with
``outside``'s credential, or dropped when there is none. Responses to a checked message pass.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any, Mapping, Optional

from autogen_core import AgentId, DefaultInterventionHandler, DropMessage, FunctionCall, MessageContext

from . import Client, Credential, Decision

__all__ = ["ZtaInterventionHandler"]

_log = logging.getLogger("zta_client.autogen")


class ZtaInterventionHandler(DefaultInterventionHandler):
    """Checks what agents send with ZTA; drops what ZTA refuses."""

    def __init__(
        self,
        client: Client,
        credentials: Mapping[str, Credential],
        *,
        outside: Optional[Credential] = None,
    ) -> None:
        self._client = client
        self._credentials = dict(credentials)
        self._outside = outside
        #: The latest refusals, newest last: (sender, what was refused, decision).
        self.refusals: collections.deque[tuple[str, str, Decision]] = collections.deque(maxlen=100)

    async def on_send(self, message: Any, *, message_context: MessageContext, recipient: AgentId) -> Any:
        if isinstance(message, FunctionCall):
            what = f"tool {message.name}"
            check = lambda credential: self._tool_call(credential, message)  # noqa: E731
        else:
            what = f"{type(message).__name__} to {recipient.type}"
            check = lambda credential: self._client.check_message(  # noqa: E731
                credential, recipient.type, type(message).__name__
            )
        return await self._decide(message, message_context, what, check)

    async def on_publish(self, message: Any, *, message_context: MessageContext) -> Any:
        topic = message_context.topic_id.type if message_context.topic_id is not None else ""
        what = f"{type(message).__name__} on topic {topic}"
        return await self._decide(
            message,
            message_context,
            what,
            lambda credential: self._client.evaluate(
                credential,
                "send_message",
                resource={"type": "topic", "id": topic},
                action_properties={"name": type(message).__name__},
            ),
        )

    def _tool_call(self, credential: Credential, call: FunctionCall) -> Decision:
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except ValueError:
            return Decision(False, None, "the tool call's arguments are not JSON")
        if not isinstance(arguments, dict):
            return Decision(False, None, "the tool call's arguments are not a JSON object")
        return self._client.check_tool_call(credential, call.name, arguments)

    async def _decide(self, message: Any, message_context: MessageContext, what: str, check: Any) -> Any:
        sender = message_context.sender
        name = sender.type if sender is not None else "(outside the runtime)"
        credential = self._credentials.get(sender.type) if sender is not None else self._outside
        if credential is None:
            decision = Decision(False, None, f"no ZTA credential for {name}")
        else:
            try:
                # The client blocks on HTTP: off the event loop, so other agents keep running.
                decision = await asyncio.to_thread(check, credential)
            except Exception as error:  # noqa: BLE001 - a failed check is a refusal
                decision = Decision(False, None, f"the ZTA check failed: {error}")
        if decision.allowed:
            return message
        _log.warning("ZTA refused %s from %s: %s", what, name, decision.describe())
        self.refusals.append((name, what, decision))
        return DropMessage
