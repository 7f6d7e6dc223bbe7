"""A CrewAI agent that uses an MCP server's tools, driven by a script instead of a model.

    python crewai_agent.py --url URL --token TOKEN --allowed TOOL_A --denied TOOL_B \
        [--args-json '{"path": "notes.txt"}'] [--timeout SECONDS]

The agent (a one-task CrewAI crew) gets its tools from the MCP server at URL through CrewAI's
own MCP support (`Agent(mcps=[MCPServerHTTP(...)])`, streamable HTTP), every request carrying
`Authorization: Bearer TOKEN`. Its model is scripted to call TOOL_A, then TOOL_B (both with the
arguments of --args-json), then to give its final answer; so the run needs no model and no
network but URL. CrewAI renames an MCP tool for the model (after its server, and in its own
spelling: `mcp_127_0_0_1_8080_mcp_files_read_file`) and calls it by its name on the server; the
script asks the model for the tool whose name on the server is TOOL_A (TOOL_B).

Prints one JSON line on stdout, the tools the server listed (their names on the server) and what
each call showed the agent:

    {"tools": ["files__read_file", ...],
     "observations": ["quarterly numbers", "... denied by policy ..."]}

Exit code 0 when the run happened, whatever the tools answered; 1 with a message on stderr when
the server could not be reached or refused the token, or the run failed or outlasted --timeout;
2 for bad arguments.
"""

import argparse
import asyncio
import concurrent.futures
import contextvars
import json
import os
import sys
import threading
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.mcp import MCPServerHTTP  # noqa: E402
from crewai.tools.mcp_native_tool import MCPNativeTool  # noqa: E402
from scripted_run import parse_args  # noqa: E402

# The marker CrewAI puts before a tool's result in the conversation (ReAct format).
OBSERVATION = "Observation:"


class ScriptedLLM(BaseLLM):
    """Answers with its turns in order and keeps what the agent was shown before each."""

    turns: list[str] = []
    seen: list[str] = []

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        shown = messages if isinstance(messages, str) else "\n".join(str(m.get("content")) for m in messages)
        self.seen.append(shown)
        return self.turns[min(len(self.seen) - 1, len(self.turns) - 1)]

    def supports_function_calling(self) -> bool:
        return False


def model_name(tools: dict[str, str], name: str) -> str:
    """The name the model knows the server's tool `name` by."""
    if name not in tools:
        raise RuntimeError(f"the server listed no tool `{name}` (it listed {sorted(tools)})")
    return tools[name]


def observations(conversation: str, first_turn: str) -> list[str]:
    """The tool results in the conversation, in order (after the model's first turn: the
    instructions before it mention the marker too)."""
    _, _, turns = conversation.partition(first_turn)
    parts = turns.split(OBSERVATION)[1:]
    return [part.split("\nThought:")[0].strip() for part in parts]


def run_in_a_thread(tool: MCPNativeTool, **kwargs: Any) -> Any:
    """CrewAI's own way of running an MCP tool's call from a running event loop: in a fresh
    loop on a thread of its own. CrewAI 1.15.30 starts that loop inside an `except` block when no
    loop is running, and its transport's teardown then takes the caught "no running event loop"
    for a transport failure and fails every call, whatever the server (the MCP Python SDK's own
    server too); a crew inside `kickoff_async` runs its tools on such a thread as well."""
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, tool._run_async(**kwargs)).result()


MCPNativeTool._run = run_in_a_thread


def run(args: argparse.Namespace, arguments: dict) -> dict:
    server = MCPServerHTTP(url=args.url, headers={"Authorization": f"Bearer {args.token}"})
    llm = ScriptedLLM(model="scripted")
    agent = Agent(
        role="research_bot",
        goal="Use the tools as scripted",
        backstory="A researcher.",
        mcps=[server],
        llm=llm,
        max_iter=5,
        verbose=False,
    )
    # CrewAI lists the server's tools when it builds the agent's toolset; listing here makes an
    # unreachable server or a refused token fail now, as an error.
    tools = {tool.original_tool_name: tool.name for tool in agent.get_mcp_tools([server])}
    allowed, denied = model_name(tools, args.allowed), model_name(tools, args.denied)
    given = json.dumps(arguments)
    llm.turns = [
        f"Thought: read first.\nAction: {allowed}\nAction Input: {given}",
        f"Thought: now the other one.\nAction: {denied}\nAction Input: {given}",
        "Thought: I now know the final answer\nFinal Answer: done",
    ]
    task = Task(description="Use the tools as scripted.", expected_output="done", agent=agent)
    Crew(agents=[agent], tasks=[task], verbose=False).kickoff()
    return {"tools": sorted(tools), "observations": observations(llm.seen[-1], llm.turns[0])}


def main() -> int:
    args, arguments = parse_args(__doc__.splitlines()[0], timeout=60.0)
    # CrewAI runs the crew synchronously; a server that stops answering must not hold the
    # caller for ever.
    watchdog = threading.Timer(args.timeout, give_up, [args])
    watchdog.daemon = True
    watchdog.start()
    try:
        outcome = run(args, arguments)
    except Exception as e:  # whatever failed, the caller gets one line saying what
        print(f"crewai_agent: the run against {args.url} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(outcome), flush=True)
    return 0


def give_up(args: argparse.Namespace) -> None:
    print(f"crewai_agent: the run against {args.url} did not end within {args.timeout}s", file=sys.stderr)
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
