"""sipctl's chat: a terminal chat (`sipctl chat ACCOUNT URI`, lines in, messages out, Ctrl-D
ends it), `sipctl chat send ID TEXT` for scripts, and `sipctl watch chat`, between two real
daemons."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.harness.sipctl import sessions, sipctl, sipctl_json
from tests.harness.waits import wait_until


def sipctl_process(daemon, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sipctl", "--runtime-dir",
                             str(daemon.runtime_dir), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen[str]) -> list[str]:
    """The lines the process prints, as they come (a thread reads them)."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_terminal_chat_send_and_watch(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    watcher = sipctl_process(b, "--json", "watch", "chat", "--count", "1")
    chat = sipctl_process(a, "chat", "local", f"sip:local@127.0.0.1:{port}")
    printed = collect(chat)
    try:
        assert chat.stdin is not None
        chat.stdin.write("hello from a\n")  # read once the chat is connected
        chat.stdin.flush()
        incoming = wait_until(lambda: [s for s in sessions(b)
                                       if s["direction"] == "incoming"])[0]
        assert incoming["streams"] == ["chat"]
        sipctl(b, "answer", incoming["id"])

        out, _ = watcher.communicate(timeout=30)  # `watch chat` saw the message arrive
        (event,) = [json.loads(line)["params"] for line in out.splitlines()]
        assert event["name"] == "chat.message" and event["data"]["content"] == "hello from a"

        message_id = sipctl(b, "chat", "send", incoming["id"], "hi back").stdout.strip()
        assert message_id
        wait_until(lambda: any(line.endswith(": hi back") for line in printed),
                   what="the reply in the terminal chat")
        assert any(line.startswith("# connected") for line in printed), printed

        chat.stdin.close()  # Ctrl-D: the session ends
        assert chat.wait(30) == 0, chat.stderr.read() if chat.stderr else ""
        wait_until(lambda: sipctl_json(b, "sessions", "get", incoming["id"])["state"]
                   == "ended", what="B's session to end")
        assert any(line.startswith("# ended") for line in printed), printed
    finally:
        for process in (watcher, chat):
            process.kill()
            process.wait()

    late = sipctl(b, "chat", "send", incoming["id"], "gone", check=False)
    assert late.returncode == 1 and "ended" in late.stderr
    usage = sipctl(b, "chat", "only-one-word", check=False)
    assert usage.returncode == 2


def test_terminal_chat_to_nobody_exits_1(pair):
    a, _ = pair
    result = sipctl(a, "chat", "local", "sip:nobody@127.0.0.1:9;transport=tcp", check=False,
                    stdin="never sent\n")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "# failed" in result.stdout


def test_dial_a_chat_then_add_and_remove_it_on_a_call(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}")  # audio
    incoming = wait_until(lambda: [s for s in sessions(b) if s["direction"] == "incoming"
                                   and s["state"] == "ringing"])[0]
    sipctl(b, "answer", incoming["id"])
    wait_until(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "established")

    sipctl(a, "add-stream", call["id"], "chat")
    proposal = wait_until(lambda: sipctl_json(b, "sessions", "get", incoming["id"])["proposal"],
                          what="the proposal at B")
    assert proposal["streams"] == ["chat"]
    sipctl(b, "accept-proposal", incoming["id"])
    wait_until(lambda: sipctl_json(a, "sessions", "get", call["id"])["streams"]
               == ["audio", "chat"], what="the chat added")
    assert sipctl(a, "chat", "send", call["id"], "over the call").stdout.strip()
    sipctl(a, "remove-stream", call["id"], "chat")
    wait_until(lambda: sipctl_json(b, "sessions", "get", incoming["id"])["streams"]
               == ["audio"], what="the chat removed")
    sipctl(a, "hangup", call["id"])

    chat = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}", "--stream", "chat")
    assert chat["streams"] == ["chat"]
    sipctl(a, "hangup", chat["id"])
