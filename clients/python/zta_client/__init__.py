"""A client for `zta serve`: asks ZTA, before an agent acts, whether it may.

Every check sends the acting agent's own credential (``{"bearer": ...}``,
``{"username": ..., "password": ...}``, ``{"assertion": ...}``: the JSON shape of ``zta
authorize``'s credential files) to the service's AuthZEN evaluation endpoint, which verifies it,
decides, and audits the decision. The agent is whoever the credential proves; nothing the agent
says about itself counts.

The client fails closed: when the service cannot be reached, answers with an error, or answers
something that is not a decision, the check is a denial naming why. Only the standard library is
used, so any agent framework can take it.

The hooks for agent frameworks are in :mod:`zta_client.crewai` and :mod:`zta_client.autogen`.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

__all__ = ["Client", "Credential", "Decision", "Denied"]

#: A credential, or a function that returns the current one (a token that is refreshed).
Credential = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]]]


@dataclass(frozen=True)
class Decision:
    """The answer to one check."""

    allowed: bool
    #: The id of the audit record (absent when the service was never reached).
    request_id: Optional[str] = None
    #: Why it was denied: the service's safe reason, or what went wrong reaching it.
    reason: Optional[str] = None

    def __bool__(self) -> bool:
        return self.allowed

    def describe(self) -> str:
        """One line for a person or a model: what was decided, why, and the audit record."""
        said = "allowed" if self.allowed else f"denied: {self.reason or 'no reason given'}"
        return f"{said} (request {self.request_id})" if self.request_id else said

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise Denied(self)


class Denied(Exception):
    """Raised by :meth:`Decision.raise_if_denied`; carries the decision."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"ZTA {decision.describe()}")
        self.decision = decision


class Client:
    """Checks actions against a `zta serve` at ``url`` (``http://host:port``).

    One keep-alive connection is reused; calls from several threads take turns on it. ``timeout``
    bounds each HTTP exchange, in seconds. A service that is not on loopback should be reached
    over HTTPS (``https://...``), because the credentials travel in the requests.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._base = parsed.path.rstrip("/")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection: Optional[http.client.HTTPConnection] = None

    # --- checks -------------------------------------------------------------------------------

    def check_tool_call(
        self, credential: Credential, tool: str, arguments: Optional[Mapping[str, Any]] = None
    ) -> Decision:
        """May the agent ``credential`` proves call ``tool`` with ``arguments``? Policy sees the
        arguments as ``context.arguments.*``."""
        context = {"arguments": dict(arguments)} if arguments is not None else None
        return self.evaluate(credential, "call_tool", resource={"type": "tool", "id": tool}, context=context)

    def check_message(
        self,
        credential: Credential,
        target_agent: str,
        message_type: str,
        context: Optional[Mapping[str, Any]] = None,
    ) -> Decision:
        """May the agent ``credential`` proves send a ``message_type`` message to
        ``target_agent``?"""
        return self.evaluate(
            credential,
            "send_message",
            resource={"type": "agent", "id": target_agent},
            context=context,
            action_properties={"name": message_type},
        )

    def evaluate(
        self,
        credential: Credential,
        action: str,
        *,
        resource: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        action_properties: Optional[Mapping[str, Any]] = None,
        subject_id: Optional[str] = None,
    ) -> Decision:
        """One AuthZEN evaluation: ``action`` is a ZTA action (``call_tool``, ``send_message``,
        ``handoff``, ``delegate``, ``execute_task`` or a custom verb); ``subject_id``, when
        given, must be the agent the credential proves."""
        try:
            subject: dict[str, Any] = {"type": "agent", "properties": {"credential": _resolve(credential)}}
        except Exception as error:  # a credential source that fails is a denial, not a crash
            return Decision(False, None, f"no credential: {error}")
        if subject_id is not None:
            subject["id"] = subject_id
        body: dict[str, Any] = {"subject": subject, "action": {"name": action}}
        if action_properties:
            body["action"]["properties"] = dict(action_properties)
        if resource is not None:
            body["resource"] = dict(resource)
        if context is not None:
            body["context"] = dict(context)
        return self._decide(body)

    # --- transport ----------------------------------------------------------------------------

    def _decide(self, body: Mapping[str, Any]) -> Decision:
        try:
            payload = json.dumps(body).encode()
        except (TypeError, ValueError) as error:
            return Decision(False, None, f"the request cannot be sent as JSON: {error}")
        try:
            status, answer = self._post("/access/v1/evaluation", payload)
        except (OSError, http.client.HTTPException) as error:
            return Decision(False, None, f"ZTA unreachable: {error}")
        if status != 200:
            said = answer.get("error") if isinstance(answer, dict) else None
            return Decision(False, None, f"ZTA answered HTTP {status}: {said or 'no detail'}")
        if not isinstance(answer, dict) or not isinstance(answer.get("decision"), bool):
            return Decision(False, None, "ZTA's answer is not a decision")
        context = answer.get("context") if isinstance(answer.get("context"), dict) else {}
        request_id = context.get("id") if isinstance(context.get("id"), str) else None
        reason = context.get("reason") if isinstance(context.get("reason"), str) else None
        return Decision(answer["decision"] is True, request_id, reason)

    def _post(self, path: str, payload: bytes) -> tuple[int, Any]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        with self._lock:
            # A kept connection the server has closed fails on first use: then one retry on a
            # fresh connection (a check decides nothing the agent acts on until it is answered).
            while True:
                reused = self._connection is not None
                connection = self._connection or self._connect()
                try:
                    connection.request("POST", self._base + path, body=payload, headers=headers)
                    response = connection.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    self._connection = None
                    if reused:
                        continue
                    raise
                if response.will_close:
                    connection.close()
                    self._connection = None
                else:
                    self._connection = connection
                break
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _resolve(credential: Credential) -> dict[str, Any]:
    value = credential() if callable(credential) else credential
    if not isinstance(value, Mapping):
        raise TypeError("a credential is a mapping such as {'bearer': '...'}")
    return dict(value)
