"""The command line both agent scripts share (see README.md)."""

import argparse
import json


def parse_args(description: str, timeout: float) -> tuple[argparse.Namespace, dict]:
    """The parsed arguments, and --args-json as a dict (exit code 2 for bad arguments)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    parser.add_argument("--token", required=True, help="bearer token sent with every request")
    parser.add_argument("--allowed", required=True, help="the tool called first (expected to run)")
    parser.add_argument("--denied", required=True, help="the tool called second (expected to be denied)")
    parser.add_argument("--args-json", default="{}", help="the arguments of both calls, a JSON object")
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds for the whole run")
    args = parser.parse_args()
    try:
        arguments = json.loads(args.args_json)
    except json.JSONDecodeError as e:
        parser.error(f"--args-json is not JSON: {e}")
    if not isinstance(arguments, dict):
        parser.error("--args-json must be a JSON object")
    return args, arguments
