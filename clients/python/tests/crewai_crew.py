"""End-to-end check of zta_client.crewai against a running `zta serve`.

A one-task CrewAI crew whose agent, research_bot, is driven by a scripted LLM (no model, no
network): it calls web_search (its policy allows it), then shell (refused), then gives its final
answer. Prints one JSON line: the final answer and the conversation it ended with. The tools'
side effects are files in --workdir. Run by crates/zta-cli/tests/it/python_client.rs.
"""

import argparse
import json
import os
import pathlib
import sys
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from crewai import Agent, Crew, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402

from zta_client import Client  # noqa: E402
from zta_client.crewai import protect_tools  # noqa: E402

SCRIPT = [
    'Thought: I should search first.\nAction: web_search\nAction Input: {"query": "zero trust agents"}',
    'Thought: Now run a command.\nAction: shell\nAction Input: {"command": "rm -rf /"}',
    "Thought: I now know the final answer\nFinal Answer: done",
]


# What the agent was shown before each turn.
SEEN: list = []


class ScriptedLLM(BaseLLM):
    """Answers with SCRIPT's turns in order."""

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        turn = len(SEEN)
        SEEN.append(messages if isinstance(messages, str) else "\n".join(str(m.get("content")) for m in messages))
        return SCRIPT[min(turn, len(SCRIPT) - 1)]

    def supports_function_calling(self) -> bool:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--credentials", required=True, help="JSON file: {agent role: credential}")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    workdir = pathlib.Path(args.workdir)

    @tool("web_search")
    def web_search(query: str) -> str:
        """Search the web."""
        (workdir / "web_search.ran").write_text(query)
        return f"results for {query}"

    @tool("shell")
    def shell(command: str) -> str:
        """Run a shell command."""
        (workdir / "shell.ran").write_text(command)
        return "done"

    credentials = json.loads(pathlib.Path(args.credentials).read_text())
    stop = protect_tools(Client(args.url, timeout=10), credentials)
    try:
        agent = Agent(
            role="research_bot",
            goal="Research zero trust",
            backstory="A researcher.",
            tools=[web_search, shell],
            llm=ScriptedLLM(model="scripted"),
            max_iter=5,
            verbose=False,
        )
        task = Task(description="Research zero trust for agents.", expected_output="A summary.", agent=agent)
        result = Crew(agents=[agent], tasks=[task], verbose=False).kickoff()
    finally:
        stop()
    # The conversation the agent had when it gave its final answer: its tool results in it.
    print(json.dumps({"final": str(result), "turns": len(SEEN), "conversation": SEEN[-1]}))


if __name__ == "__main__":
    main()
