"""A tiny stdio MCP server that misbehaves on request, for the bridge's failure tests
(tests/bridge_interop.rs). It refuses an initialize from a client named "refused". Tools:
  ok        answers "fine"
  crash     exits with status 3 in the middle of the call (no answer)
  garbage   prints a line that is not JSON-RPC to stdout
  slow      answers after 30 s (the client disconnects first)
  huge      answers with a line over the bridge's --max-line-bytes
  change    sends notifications/tools/list_changed, then answers "changed"
  touch     sends notifications/resources/updated for its argument "uri", then answers
            "touched"
  ask       asks its client elicitation/create (sending progress before, and after the
            answer when the call has a progressToken), then answers "hello <name>", or
            "ask failed: <error message>" when the client's answer is an error
Everything it receives is noted on stderr ("got <method> <id> <requestId or uri>"), which the
bridge logs, so a
test can see what reached the child (and that stderr never reaches the client).
"""

import json
import sys
import threading
import time


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request_id, text):
    send({"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}})


def progress(token, value):
    if token is not None:
        send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": value}})


def main():
    # The server's own requests waiting for the client: its id -> (the call's id, progress token).
    asking = {}
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        request_id = message.get("id")
        params = message.get("params") or {}
        noted = params.get("requestId", params.get("uri"))
        sys.stderr.write(f"got {method} {json.dumps(request_id)} {json.dumps(noted)}\n")
        sys.stderr.flush()
        if request_id is None:
            continue
        if method is None:
            call_id, token = asking.pop(request_id)
            if "error" in message:
                answer(call_id, f"ask failed: {message['error']['message']}")
            else:
                progress(token, 2)
                answer(call_id, f"hello {message['result']['content']['name']}")
            continue
        if method == "initialize" and (params.get("clientInfo") or {}).get("name") == "refused":
            send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": "unsupported client"}})
        elif method == "initialize":
            send({"jsonrpc": "2.0", "id": request_id, "result": {
                "protocolVersion": params.get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}},
                "serverInfo": {"name": "fake", "version": "1"},
            }})
        elif method in ("resources/subscribe", "resources/unsubscribe"):
            if "refuse" in params.get("uri", ""):
                send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": "no such resource"}})
            else:
                send({"jsonrpc": "2.0", "id": request_id, "result": {}})
        elif method == "tools/call":
            name = params.get("name")
            if name == "ok":
                answer(request_id, "fine")
            elif name == "crash":
                sys.stderr.write("fake server: crashing now\n")
                sys.stderr.flush()
                sys.exit(3)
            elif name == "garbage":
                sys.stdout.write("Traceback (most recent call last): secret=hunter2\n")
                sys.stdout.flush()
            elif name == "slow":
                threading.Timer(30, answer, (request_id, "late")).start()
            elif name == "change":
                send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
                answer(request_id, "changed")
            elif name == "touch":
                uri = (params.get("arguments") or {}).get("uri")
                send({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}})
                answer(request_id, "touched")
            elif name == "ask":
                token = (params.get("_meta") or {}).get("progressToken")
                progress(token, 1)
                ask_id = f"ask-{request_id}"
                asking[ask_id] = (request_id, token)
                send({"jsonrpc": "2.0", "id": ask_id, "method": "elicitation/create", "params": {
                    "message": "Your name?",
                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
                }})
            elif name == "huge":
                answer(request_id, "x" * 4096)
        else:
            send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}})


main()
