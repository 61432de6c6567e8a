"""A small MCP server over stdio (newline-delimited JSON-RPC) for the nexus-tools MCP tests.

Faults on demand: the `crash` tool writes to stderr and exits with status 3 without answering;
`MCP_FAIL_AT_START=1` makes it exit with status 2 before the handshake; `slow` runs until it
is cancelled (and records the cancellation); `add_tool` adds a tool and sends
notifications/tools/list_changed; `MCP_GRANDCHILD_PIDFILE` makes it start a `sleep` that stays
in its process group.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time

OUT = threading.Lock()
STATE = threading.Lock()
CANCELLED = []  # params of notifications/cancelled
CANCELLED_IDS = set()
EXTRA_TOOLS = []

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

OBJECT = {"type": "object", "properties": {}}
TOOLS = [
    {
        "name": "echo",
        "description": "Echoes its text.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "What to echo."}},
            "required": ["text"],
        },
    },
    {"name": "fail", "description": "Always fails.", "inputSchema": OBJECT},
    {"name": "image", "description": "Returns a picture.", "inputSchema": OBJECT},
    {"name": "structured", "description": "Returns structured content.", "inputSchema": OBJECT},
    {
        "name": "slow",
        "description": "Sleeps until cancelled or `secs` pass.",
        "inputSchema": {"type": "object", "properties": {"secs": {"type": "number"}}},
    },
    {"name": "crash", "description": "Exits with status 3 mid-call.", "inputSchema": OBJECT},
    {"name": "add_tool", "description": "Adds the tool `extra`.", "inputSchema": OBJECT},
    {"name": "pid", "description": "Its process id.", "inputSchema": OBJECT},
    {"name": "env", "description": "Its environment variable names.", "inputSchema": OBJECT},
    {"name": "cancellations", "description": "Cancellations received.", "inputSchema": OBJECT},
    {"name": "dotted.name", "description": "A name with a dot.", "inputSchema": OBJECT},
]


def send(message):
    with OUT:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def result(request_id, value):
    send({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id, code, message):
    send({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def text(value, is_error=False):
    return {"content": [{"type": "text", "text": value}], "isError": is_error}


def call(request_id, name, args):
    if name == "echo":
        result(request_id, text(args.get("text", "")))
    elif name == "fail":
        result(request_id, text("boom: the tool failed", True))
    elif name == "image":
        data = base64.b64encode(PNG).decode()
        content = [{"type": "text", "text": "a picture"}, {"type": "image", "data": data, "mimeType": "image/png"}]
        result(request_id, {"content": content})
    elif name == "structured":
        result(request_id, {"content": [], "structuredContent": {"answer": 42}})
    elif name == "slow":
        deadline = time.time() + float(args.get("secs", 30))
        while time.time() < deadline:
            with STATE:
                if request_id in CANCELLED_IDS:
                    return  # a cancelled request gets no answer
            time.sleep(0.02)
        result(request_id, text("slow done"))
    elif name == "crash":
        log("fatal: crashing on purpose")
        os._exit(3)
    elif name == "add_tool":
        with STATE:
            EXTRA_TOOLS.append({"name": "extra", "description": "Added later.", "inputSchema": OBJECT})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        result(request_id, text("added"))
    elif name == "pid":
        result(request_id, text(str(os.getpid())))
    elif name == "env":
        result(request_id, text(json.dumps(sorted(os.environ.keys()))))
    elif name == "cancellations":
        with STATE:
            result(request_id, text(json.dumps(CANCELLED)))
    elif name == "dotted.name":
        result(request_id, text("dotted"))
    else:
        error(request_id, -32602, "unknown tool: " + name)


def main():
    if os.environ.get("MCP_FAIL_AT_START"):
        log("fatal: missing FOO_TOKEN")
        sys.exit(2)
    log("test server started, pid %d" % os.getpid())
    pidfile = os.environ.get("MCP_GRANDCHILD_PIDFILE")
    if pidfile:
        child = subprocess.Popen(["sleep", "300"])
        with open(pidfile, "w") as f:
            f.write(str(child.pid))
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        request_id = message.get("id")
        if method == "initialize":
            version = message["params"]["protocolVersion"]
            result(request_id, {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "py-test", "version": "1.0.0"},
            })
        elif method == "tools/list":
            with STATE:
                result(request_id, {"tools": TOOLS + EXTRA_TOOLS})
        elif method == "tools/call":
            params = message["params"]
            args = (params.get("arguments") or {}, )
            threading.Thread(target=call, args=(request_id, params["name"]) + args, daemon=True).start()
        elif method == "notifications/cancelled":
            with STATE:
                CANCELLED.append(message["params"])
                CANCELLED_IDS.add(message["params"].get("requestId"))
        elif method == "ping":
            result(request_id, {})
        elif request_id is not None and method is not None:
            error(request_id, -32601, "method not found: " + method)


main()
