"""End-to-end check of zta_client.autogen against a running `zta serve`.

An autogen_core runtime with ZtaInterventionHandler: research_bot, driven by AutoGen's scripted
ReplayChatCompletionClient, calls two tools through a ToolAgent and sends findings to two peers;
an agent type with no credential sends one message too. Prints one JSON line with what happened;
the tool's side effects are files in --workdir. Run by crates/zta-cli/tests/it/python_client.rs.
"""

import argparse
import asyncio
import json
import pathlib
import sys
from dataclasses import dataclass

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from autogen_core import (  # noqa: E402
    AgentId,
    FunctionCall,
    MessageContext,
    RoutedAgent,
    SingleThreadedAgentRuntime,
    message_handler,
)
from autogen_core.exceptions import MessageDroppedException  # noqa: E402
from autogen_core.models import CreateResult, RequestUsage, UserMessage  # noqa: E402
from autogen_core.tool_agent import ToolAgent  # noqa: E402
from autogen_core.tools import FunctionTool  # noqa: E402
from autogen_ext.models.replay import ReplayChatCompletionClient  # noqa: E402

from zta_client import Client  # noqa: E402
from zta_client.autogen import ZtaInterventionHandler  # noqa: E402


@dataclass
class Start:
    pass


@dataclass
class Findings:
    text: str


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--credentials", required=True, help="JSON file: {agent type: credential}")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


async def run(args: argparse.Namespace) -> dict:
    workdir = pathlib.Path(args.workdir)
    credentials = json.loads(pathlib.Path(args.credentials).read_text())
    # The application's own messages come from outside the runtime: it acts as the orchestrator.
    handler = ZtaInterventionHandler(Client(args.url), credentials, outside=credentials["orchestrator"])
    runtime = SingleThreadedAgentRuntime(intervention_handlers=[handler])
    outcome: dict = {"calls": [], "sent": [], "received": []}

    def web_search(query: str) -> str:
        (workdir / "web_search.ran").write_text(query)
        return f"results for {query}"

    def shell(command: str) -> str:
        (workdir / "shell.ran").write_text(command)
        return "done"

    tools = [FunctionTool(web_search, description="Search the web."), FunctionTool(shell, description="Run a command.")]
    calls = [
        FunctionCall(id="1", name="web_search", arguments=json.dumps({"query": "zero trust agents"})),
        FunctionCall(id="2", name="shell", arguments=json.dumps({"command": "rm -rf /"})),
    ]
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    model = ReplayChatCompletionClient(
        [CreateResult(finish_reason="function_calls", content=calls, usage=usage, cached=False)]
    )

    class Researcher(RoutedAgent):
        @message_handler
        async def on_start(self, message: Start, ctx: MessageContext) -> None:
            response = await model.create([UserMessage(content="research", source="user")], tools=tools)
            for call in response.content:
                try:
                    result = await self.send_message(call, AgentId("tools", "default"))
                    outcome["calls"].append({"tool": call.name, "ran": True, "content": result.content})
                except MessageDroppedException:
                    outcome["calls"].append({"tool": call.name, "ran": False})
            for peer in ("analyst_bot", "writer_bot"):
                try:
                    await self.send_message(Findings("quarterly numbers"), AgentId(peer, "default"))
                    outcome["sent"].append({"to": peer, "delivered": True})
                except MessageDroppedException:
                    outcome["sent"].append({"to": peer, "delivered": False})

    class Peer(RoutedAgent):
        @message_handler
        async def on_findings(self, message: Findings, ctx: MessageContext) -> None:
            outcome["received"].append({"by": self.id.type, "from": ctx.sender.type if ctx.sender else None})

    await ToolAgent.register(runtime, "tools", lambda: ToolAgent("the crew's tools", tools))
    await Researcher.register(runtime, "research_bot", lambda: Researcher("researches"))
    await Peer.register(runtime, "analyst_bot", lambda: Peer("analyses"))
    await Peer.register(runtime, "writer_bot", lambda: Peer("writes"))
    runtime.start()
    await runtime.send_message(Start(), AgentId("research_bot", "default"))
    # An agent type the handler holds no credential for.
    try:
        await runtime.send_message(
            Findings("injected"), AgentId("analyst_bot", "default"), sender=AgentId("intruder", "default")
        )
        outcome["intruder_delivered"] = True
    except MessageDroppedException:
        outcome["intruder_delivered"] = False
    # Not stop_when_idle(): autogen-core 0.7.5 never marks a dropped message done, so that would
    # wait forever after a refusal. Every send above has been answered already.
    await runtime.stop()
    outcome["refusals"] = [{"sender": s, "what": w, "reason": d.reason, "request_id": d.request_id} for s, w, d in handler.refusals]
    return outcome


if __name__ == "__main__":
    main()
