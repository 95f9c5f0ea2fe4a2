"""Drives 2026-07-28 input-required rounds through `mcpguard bridge -- mcp-server-everything
stdio` with the official Python MCP SDK (`mcp` from PyPI): server-everything speaks
2025-11-25 and asks its client by sending elicitation/create and sampling/createMessage in
the middle of a tool call; the SDK speaks 2026-07-28 and expects `input_required` results
that it answers and retries. Run by tests/bridge_interop.rs.

usage: sdk_input_rounds.py URL

Prints one line per passed check and "ALL OK" at the end; any failure raises.
"""

import sys

import anyio
from mcp.client.client import Client
from mcp_types import CreateMessageResult, ElicitResult, TextContent


def check(condition, what, got):
    if not condition:
        raise AssertionError(f"{what}: got {got!r}")


async def main():
    url = sys.argv[1]
    asked = []

    async def on_elicit(context, params):
        asked.append(("elicit", params.message, sorted(params.requested_schema["required"])))
        return ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True, "integer": 7})

    async def on_sample(context, params):
        asked.append(("sample", params.messages[0].content.text, params.max_tokens))
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="forty-two"), model="test-model"
        )

    async with Client(url, mode="auto", elicitation_callback=on_elicit, sampling_callback=on_sample) as c:
        check(c.session.protocol_version == "2026-07-28", "protocol version", c.session.protocol_version)
        tools = [t.name for t in (await c.list_tools()).tools]
        for tool in ("trigger-elicitation-request", "trigger-sampling-request"):
            check(tool in tools, f"tools/list has {tool}", tools)

        result = await c.call_tool("trigger-elicitation-request", {})
        texts = [x.text for x in result.content]
        check(
            texts[:2]
            == [
                "✅ User provided the requested information!",
                "User inputs:\n- Name: Ada Lovelace\n- Agreed to terms: true\n- Favorite Integer: 7",
            ]
            and not result.is_error,
            "elicitation round",
            texts,
        )
        check(
            asked == [("elicit", "Please provide inputs for the following fields:", ["name"])],
            "the elicitation the client was asked",
            asked,
        )
        print("elicitation ok", flush=True)

        asked.clear()
        result = await c.call_tool("trigger-sampling-request", {"prompt": "six times seven", "maxTokens": 50})
        texts = [x.text for x in result.content]
        check(
            len(texts) == 1
            and texts[0].startswith("LLM sampling result: \n")
            and '"text": "forty-two"' in texts[0]
            and '"model": "test-model"' in texts[0],
            "sampling round",
            texts,
        )
        check(
            asked == [("sample", "Resource trigger-sampling-request context: six times seven", 50)],
            "the sampling request the client was asked",
            asked,
        )
        print("sampling ok", flush=True)

    # A client that declared no elicitation capability is refused by the bridge, and the
    # tool reports the refusal as its own error: nothing hangs.
    async with Client(url, mode="auto") as c:
        result = await c.call_tool("trigger-elicitation-request", {})
        texts = [x.text for x in result.content]
        check(
            result.is_error
            and texts
            == ["MCP error -32601: elicitation/create: the client did not declare the elicitation capability"],
            "no capability",
            texts,
        )
        print("no capability ok", flush=True)
    print("ALL OK", flush=True)


anyio.run(main)
