"""An AutoGen agent that uses an MCP server's tools, driven by a script instead of a model.

    python autogen_agent.py --url URL --token TOKEN --allowed TOOL_A --denied TOOL_B \
        [--args-json '{"path": "notes.txt"}'] [--timeout SECONDS]

The agent (AutoGen's AssistantAgent) gets its tools from the MCP server at URL over streamable
HTTP, every request carrying `Authorization: Bearer TOKEN`. Its model is AutoGen's
ReplayChatCompletionClient, scripted to call TOOL_A, then TOOL_B (both with the arguments of
--args-json), then to answer in text; so the run needs no model and no network but URL.

Prints one JSON line on stdout, the tools the server listed and the results of the calls as the
agent saw them:

    {"tools": ["files__read_file", ...],
     "calls": [{"tool": "files__read_file", "is_error": false, "content": "..."}, ...]}

Exit code 0 when the run happened, whatever the tools answered; 1 with a message on stderr when
the server could not be reached or refused the token, or the run failed or outlasted --timeout;
2 for bad arguments.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import threading

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import EVENT_LOGGER_NAME, FunctionCall
from autogen_core.models import CreateResult, ModelFamily, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from autogen_ext.tools.mcp import McpWorkbench, StreamableHttpServerParams
from scripted_run import parse_args

NO_USAGE = RequestUsage(prompt_tokens=0, completion_tokens=0)

# The replay model counts the tokens of string content only and warns about every other message
# on each turn; the count means nothing here, and the warnings would bury a real error on stderr.
logging.getLogger(EVENT_LOGGER_NAME).addFilter(lambda record: "Token count" not in record.getMessage())


def scripted_model(tools: list[str], arguments: dict) -> ReplayChatCompletionClient:
    """A model that calls each tool in turn, one call per turn, then answers in text."""
    turns: list[CreateResult] = [
        CreateResult(
            finish_reason="function_calls",
            content=[FunctionCall(id=f"call-{i}", name=tool, arguments=json.dumps(arguments))],
            usage=NO_USAGE,
            cached=False,
        )
        for i, tool in enumerate(tools, start=1)
    ]
    turns.append(CreateResult(finish_reason="stop", content="done", usage=NO_USAGE, cached=False))
    # The default model_info says no function calling, and AssistantAgent refuses tools then.
    info = ModelInfo(
        vision=False,
        function_calling=True,
        json_output=False,
        family=ModelFamily.UNKNOWN,
        structured_output=False,
    )
    return ReplayChatCompletionClient(turns, model_info=info)


async def run(args: argparse.Namespace, arguments: dict) -> dict:
    params = StreamableHttpServerParams(
        url=args.url,
        headers={"Authorization": f"Bearer {args.token}"},
        # The read timeout bounds a server that takes the request and never answers: without it
        # the wait for the answer (300s by default) outlasts the cancellation of --timeout.
        timeout=args.timeout,
        sse_read_timeout=args.timeout,
    )
    tools = [args.allowed, args.denied]
    async with McpWorkbench(params) as workbench:
        # Listing first makes an unreachable server or a refused token fail here, as an error,
        # rather than show up as tool results that merely say so.
        listed = [tool["name"] for tool in await workbench.list_tools()]
        agent = AssistantAgent(
            "agent",
            model_client=scripted_model(tools, arguments),
            workbench=workbench,
            # One model turn per tool call, and one for the answer.
            max_tool_iterations=len(tools) + 1,
        )
        result = await agent.run(task="Use the tools as scripted.")
    calls = [
        {"tool": r.name, "is_error": bool(r.is_error), "content": r.content}
        for message in result.messages
        if isinstance(message, ToolCallExecutionEvent)
        for r in message.content
    ]
    return {"tools": listed, "calls": calls}


def main() -> int:
    args, arguments = parse_args(__doc__.splitlines()[0], timeout=30.0)
    # A last resort: the cancellation at --timeout waits for AutoGen's cleanup, and that could wait
    # on a server that stopped answering; the caller gets an answer in bounded time all the same.
    watchdog = threading.Timer(args.timeout + 10, give_up, [args])
    watchdog.daemon = True
    watchdog.start()
    try:
        outcome = asyncio.run(asyncio.wait_for(run(args, arguments), args.timeout))
    except TimeoutError:
        print(f"autogen_agent: no result from {args.url} within {args.timeout}s", file=sys.stderr)
        return 1
    except Exception as e:  # whatever failed, the caller gets one line saying what
        print(f"autogen_agent: the run against {args.url} failed: {describe(e)}", file=sys.stderr)
        return 1
    print(json.dumps(outcome), flush=True)
    return 0


def give_up(args: argparse.Namespace) -> None:
    print(f"autogen_agent: the run against {args.url} did not end within {args.timeout + 10}s", file=sys.stderr)
    os._exit(1)


def describe(e: BaseException) -> str:
    """The error and what it grouped or was caused by (anyio wraps transport errors in groups)."""
    # On one line (httpx's messages run over two), so that stderr's last line says it all.
    parts = [f"{type(e).__name__}: {' '.join(str(e).split())}"]
    if isinstance(e, BaseExceptionGroup):
        parts += [describe(inner) for inner in e.exceptions]
    elif e.__cause__ is not None and str(e.__cause__) != str(e):
        parts.append(describe(e.__cause__))
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
