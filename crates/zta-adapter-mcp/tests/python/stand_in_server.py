"""A stand-in for the ZTA MCP gateway, to try autogen_agent.py without the Rust gateway.

It serves MCP over streamable HTTP at http://127.0.0.1:PORT/mcp, answers 401 to a request
without `Authorization: Bearer TOKEN`, and offers the two tools a gateway in front of a `files`
server would: `files__read_file` answers a fixed text, `files__delete_file` answers what the
gateway answers for a denied call, an MCP error result (`isError: true`) saying "denied by policy".

    python stand_in_server.py --token TOKEN [--port PORT]

With --port 0 (the default) the system picks a free port. Once it listens, the server prints one
line, `listening on http://127.0.0.1:PORT/mcp`, so a caller can wait for it and read the URL.
"""

import argparse
import asyncio
import hmac
import json
import logging
import socket
import sys

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.types import CallToolResult, TextContent

# What `files__read_file` returns, whatever the path: the test checks it reached the agent.
READ_TEXT = "hello from the stand-in files server"


def build_app(token: str):
    # Warnings and errors only: at INFO FastMCP logs every request.
    mcp = FastMCP("zta-stand-in", log_level="WARNING")
    # When a client ends its session, this mcp version logs the closing of the session's
    # server-to-client stream as an error with a traceback; nothing went wrong.
    logging.getLogger("mcp.server.streamable_http").addFilter(
        lambda record: record.getMessage() != "Error in standalone SSE writer"
    )

    @mcp.tool(name="files__read_file", description="Read a file and return its text.")
    def read_file(path: str) -> str:
        return READ_TEXT

    @mcp.tool(name="files__delete_file", description="Delete a file.")
    def delete_file(path: str) -> CallToolResult:
        # Returned, not raised: FastMCP would prefix a raised error's text with its own words.
        return CallToolResult(content=[TextContent(type="text", text="denied by policy")], isError=True)

    return require_bearer(mcp.streamable_http_app(), token)


def require_bearer(app, token: str):
    """Wraps an ASGI app so that an HTTP request without the bearer token gets a 401.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which gets in the way of streamed
    (SSE) answers; the lifespan scope passes through so FastMCP's session manager starts.
    """
    expected = f"Bearer {token}".encode()

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = json.dumps({"error": "missing or wrong bearer token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return wrapped


async def serve(token: str, port: int) -> None:
    # Bound here rather than by uvicorn, so that with port 0 we know which port we got.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(build_app(token), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)

    announcing = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        # A server that failed at start never sets `started`: do not wait for it forever.
        announcing.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True, help="the bearer token every request must carry")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.token, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        sys.exit(f"stand_in_server: cannot listen on 127.0.0.1:{args.port}: {e}")


if __name__ == "__main__":
    main()
