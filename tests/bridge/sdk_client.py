"""Drives `mcpguard bridge -- mcp-server-everything stdio` with the official Python MCP SDK
(`mcp` from PyPI), asserting exact results. Run by tests/bridge_interop.rs.

usage: sdk_client.py URL MODE [HOST]
  MODE  legacy: the 2025-11-25 initialize handshake and a session;
        auto:   the SDK probes server/discover and speaks 2026-07-28 (stateless).
  HOST  a Host header to send instead of the URL's (the Service-name case).

Prints one line per passed check and "ALL OK" at the end; any failure raises.
"""

import asyncio
import re
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

EXPECTED_TOOLS = [
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-long-running-operation",
    "simulate-research-query",
]
# Under 2026-07-28 the bridge initialized the shared server declaring sampling and
# elicitation (it carries them as input-required rounds), so server-everything registers its
# tools that ask the client; a 2025-11-25 session declares what the client declares (nothing).
INPUT_TOOLS = ["trigger-elicitation-request", "trigger-url-elicitation", "trigger-sampling-request"]
STATIC_DOCS = [
    "demo://resource/static/document/architecture.md",
    "demo://resource/static/document/extension.md",
    "demo://resource/static/document/features.md",
    "demo://resource/static/document/how-it-works.md",
    "demo://resource/static/document/instructions.md",
]


def client(url, mode, host):
    if host is None:
        return Client(url, mode=mode)
    http = httpx2.AsyncClient(headers={"Host": host}, timeout=httpx2.Timeout(30, read=300))
    return Client(streamable_http_client(url, http_client=http), mode=mode)


def check(condition, what, got):
    if not condition:
        raise AssertionError(f"{what}: got {got!r}")


async def one_client(url, mode, host, tag):
    async with client(url, mode, host) as c:
        want_version = "2025-11-25" if mode == "legacy" else "2026-07-28"
        got = c.session.protocol_version
        check(got == want_version, f"[{tag}] protocol version", got)

        tools = [t.name for t in (await c.list_tools()).tools]
        want_tools = EXPECTED_TOOLS if mode == "legacy" else EXPECTED_TOOLS[:-1] + INPUT_TOOLS + EXPECTED_TOOLS[-1:]
        check(tools == want_tools, f"[{tag}] tools/list", tools)

        echo = await c.call_tool("echo", {"message": f"hello from {tag}"})
        texts = [(x.type, x.text) for x in echo.content]
        check(texts == [("text", f"Echo: hello from {tag}")] and not echo.is_error, f"[{tag}] echo", texts)

        total = await c.call_tool("get-sum", {"a": 2, "b": 40})
        texts = [x.text for x in total.content]
        check(texts == ["The sum of 2 and 40 is 42."], f"[{tag}] get-sum", texts)

        progress = []

        async def on_progress(value, total, message):
            progress.append((value, total))

        long = await c.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
        )
        texts = [x.text for x in long.content]
        check(
            texts == ["Long running operation completed. Duration: 1 seconds, Steps: 4."],
            f"[{tag}] long-running result",
            texts,
        )
        check(progress == [(1, 4), (2, 4), (3, 4), (4, 4)], f"[{tag}] progress notifications", progress)

        resources = [str(r.uri) for r in (await c.list_resources()).resources]
        check(resources[: len(STATIC_DOCS)] == STATIC_DOCS, f"[{tag}] resources/list", resources)
        read = await c.read_resource("demo://resource/dynamic/text/7")
        contents = [(str(x.uri), x.mime_type, x.text) for x in read.contents]
        check(
            len(contents) == 1
            and contents[0][:2] == ("demo://resource/dynamic/text/7", "text/plain")
            and re.fullmatch(
                r"Resource 7: This is a plaintext resource created at \d{1,2}:\d{2}:\d{2} [AP]M", contents[0][2]
            ),
            f"[{tag}] resources/read",
            contents,
        )

        prompt = await c.get_prompt("args-prompt", {"city": "Lyon", "state": "ARA"})
        messages = [(m.role, m.content.type, m.content.text) for m in prompt.messages]
        check(messages == [("user", "text", "What's weather in Lyon, ARA?")], f"[{tag}] prompts/get", messages)
    print(f"[{tag}] ok", flush=True)


async def main():
    url, mode = sys.argv[1], sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else None
    await one_client(url, mode, host, "single")
    # Two clients at once: each gets its own answers and only its own progress.
    await asyncio.gather(one_client(url, mode, host, "first"), one_client(url, mode, host, "second"))
    print("ALL OK", flush=True)


asyncio.run(main())
