"""RFC 4475 against a running daemon: the 49 torture messages over UDP and TCP.

tests/sip/test_rfc4475.py checks the parser and `validate_request_for_uas` on these messages;
this checks what the daemon as a whole puts on the wire. The messages name foreign hosts, so
tests/sip/rfc4475_driver.py runs the daemon and sends them inside a network namespace that has
only loopback (`unshare --net`); it prints a JSON report that the tests below read.

The daemon has one account besides `local`: sip:user@example.com, so the many messages to
sip:user@example.com reach a user it has, and the others (vivekg, kumiko, ...) a user it lacks.

Expected answers are those of /work/shared/testdata/rfc4475/README.md for an endpoint (a UA:
no registrar, no proxy). Where RFC 3261 §8.2 fixes an order of checks, it is used: method
(405/501, §8.2.1) before Request-URI (416/404, §8.2.2.1) before Require (420, §8.2.2.3) before
content (415, §8.2.3).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import RFC4475

# The driver runs the daemon, in a process of its own where tests/conftest.py cannot see it.
pytestmark = pytest.mark.daemon

DRIVER = Path(__file__).with_name("rfc4475_driver.py")
ALL = sorted(p.stem for p in RFC4475.glob("*.dat"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# A UA's answers, UDP. kind: "status" (a final response with one of `codes`), "processed" (a
# final response that is no 400 and no server error: the request was taken), "reject" (400-ish
# code from `codes`, or no answer at all), "drop" (no answer: a response sent to us).


@dataclass(frozen=True)
class Expect:
    kind: str
    codes: frozenset[int] = frozenset()
    why: str = ""


def status(*codes: int, why: str = "") -> Expect:
    return Expect("status", frozenset(codes), why)


def processed(*also: int, why: str = "") -> Expect:
    return Expect("processed", frozenset(also), why)


def reject(*codes: int, why: str = "") -> Expect:
    return Expect("reject", frozenset(codes or (400,)), why)


DROP = Expect("drop", why="a response that matches no transaction: discarded silently")

# Calls come with the sessions issue; until then the daemon answers INVITE with 405 (Allow
# names what it handles), before it looks at the user or the body. Flip this when INVITE is
# handled: the INVITE messages then get the answers the RFC describes for them.
INVITE_HANDLED = True


def invite(expect: Expect) -> Expect:
    return expect if INVITE_HANDLED else status(405, why="INVITE is a known method not handled "
                                                             "yet: 405 with Allow (§8.2.1)")


EXPECTED: dict[str, Expect] = {
    # 3.1.1 valid
    "wsinv": invite(status(404, 481, why="vivekg is no user here; its To tag makes it "
                                         "in-dialog: 481 would do too")),
    "intmeth": status(501, why="unknown method: 501 with Allow; §8.2.1 (method) comes before "
                               "the Request-URI check (404)"),
    "esc01": invite(status(404, why="the user part is 'sips:user@example.com', no user here")),
    "escnull": status(405, why="REGISTER at an endpoint that is no registrar"),
    "esc02": status(501, why="RE%47IST%45R is not REGISTER: an unknown method"),
    "lwsdisp": processed(),
    "longreq": processed(),
    "dblreq": status(405, why="the REGISTER (an endpoint: 405); the trailing INVITE is ignored"),
    "semiuri": status(404, why="the user is 'user;par=u@example.net', no user here"),
    "transports": processed(),
    "mpart01": status(404, 415, why="kumiko is no user here (404, §8.2.2.1); a UA that checks "
                                    "the body type first says 415"),
    "unreason": DROP,
    "noreason": DROP,
    # 3.1.2 invalid
    "badinv01": reject(),
    "clerr": reject(),
    "ncl": reject(),
    "scalar02": reject(),
    "scalarlg": DROP,
    "quotbal": reject(),
    "ltgtruri": reject(),
    "lwsruri": reject(),
    "lwsstart": reject(),
    "trws": reject(),
    "escruri": reject(),
    "baddate": processed(400, why="a UA that ignores Date processes it"),
    "regbadct": reject(),
    "badaspec": reject(),
    "baddn": reject(),
    "badvers": status(505),
    "mismatch01": status(400),
    "mismatch02": status(501, 400, why="501 preferred, 400 acceptable"),
    "bigcode": DROP,
    # 3.2
    "badbranch": processed(400, why="RFC 2543 matching, or a stateless 400"),
    # 3.3
    "insuf": reject(),
    "unkscm": status(416),
    "novelsc": status(416, 404),
    "unksm2": status(405, 400, why="an endpoint: 405 for REGISTER (a registrar would say 400)"),
    "bext01": status(420),
    "invut": invite(status(415)),
    "regaut01": status(405, why="an endpoint that is no registrar"),
    "multi01": status(400),
    "mcl01": reject(),
    "bcast": DROP,
    "zeromf": processed(why="an endpoint processes Max-Forwards 0 (no 483)"),
    "cparam01": status(405),
    "cparam02": status(405),
    "regescrt": status(405),
    "sdp01": invite(status(406, 400)),
    # 3.4
    "inv2543": processed(400, why="accepted with RFC 2543 compatibility, else 400"),
}

# Over TCP: messages that cannot be framed behave differently (RFC 4475 §3.1.2.2, .3, §3.3.9).
TCP_WAITS = {"clerr": "Content-Length larger than the octets sent: wait for more, then close",
             "baddn": "the header section never ends (no empty line): wait for more"}
TCP_FRAMING_LOST = {"ncl": "negative Content-Length", "mcl01": "two Content-Length values",
                    "inv2543": "no Content-Length, which a stream needs (RFC 3261 §20.14)"}
OPTIONS_TO_KNOWN_USER = ("lwsdisp", "transports", "zeromf")  # OPTIONS sip:user@example.com


def test_the_expectations_cover_all_49_messages():
    assert sorted(EXPECTED) == ALL and len(ALL) == 49


# -- running the driver ------------------------------------------------------------------------

def namespace_command() -> list[str] | None:
    """How to enter a network namespace with loopback only here, or None if we cannot."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for prefix in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        probe = subprocess.run([*prefix, "--", "sh", "-c", "ip link set lo up"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason}: in CI this test must run (CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    prefix = namespace_command()
    if prefix is None:
        unavailable("cannot create a network namespace (unshare --net) here")
    base = tmp_path_factory.mktemp("rfc4475-daemon")
    command = [*prefix, "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
               sys.executable, str(DRIVER), "--base", str(base)]
    done = subprocess.run(command, capture_output=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"the driver failed ({done.returncode}):\n"
                    f"{done.stderr.decode(errors='replace')[-5000:]}")
    data = json.loads(done.stdout)
    (base / "report.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    print(f"RFC 4475 daemon report: {base / 'report.json'}")
    return data


def entry(report, name: str, transport: str) -> dict:
    [found] = [m for m in report["messages"]
               if m["name"] == name and m["transport"] == transport]
    return found


def finals(found: dict) -> list[dict]:
    return [r for r in found["responses"] if r.get("status", 0) >= 200]


def show(found: dict) -> str:
    lines = [f"{found['transport']} {found['name']}:"]
    for r in found["responses"]:
        lines.append("  <- " + r.get("raw", r.get("start", "?")).replace("\r\n", "\n     "))
    for r in found.get("late", []):
        lines.append(f"  (late) {r.get('start')}")
    if not found["responses"]:
        lines.append("  (no answer)")
    return "\n".join(lines)


def check_expectation(found: dict, expect: Expect) -> None:
    answers = finals(found)
    statuses = {r["status"] for r in answers}
    assert len(statuses) <= 1, f"contradicting final responses\n{show(found)}"
    code = next(iter(statuses), None)
    if expect.kind == "drop":
        assert not found["responses"], f"a response must be dropped\n{show(found)}"
    elif expect.kind == "reject":
        assert code is None or code in expect.codes, \
            f"expected {sorted(expect.codes)} or no answer\n{show(found)}"
    elif expect.kind == "status":
        assert code in expect.codes, f"expected {sorted(expect.codes)} ({expect.why})\n" \
                                     f"{show(found)}"
    elif expect.kind == "processed":
        assert code is not None, f"expected an answer ({expect.why})\n{show(found)}"
        taken = code != 400 and code not in (500, 503, 505, 513)
        assert taken or code in expect.codes, \
            f"expected the request to be processed ({expect.why})\n{show(found)}"


# -- UDP ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_udp_answer(report, name):
    found = entry(report, name, "udp")
    assert found["send_error"] is None
    check_expectation(found, EXPECTED[name])


@pytest.mark.parametrize("name", ALL)
def test_udp_daemon_still_answers_after_the_message(report, name):
    # The probe: a valid OPTIONS right after the message got a final response.
    assert entry(report, name, "udp")["probe_answered"]


@pytest.mark.parametrize("name", ALL)
def test_answers_are_well_formed_and_copy_the_request(report, name):
    found = entry(report, name, "udp")
    sent = (RFC4475 / f"{name}.dat").read_bytes()
    from .rfc4475_driver import request_parts

    request = request_parts(sent)
    for response in found["responses"]:
        assert "status" in response, f"not a response\n{show(found)}"
        if request.get("call_id"):
            assert response["call_id"] == request["call_id"], show(found)
        assert response["vias"], f"no Via in the answer\n{show(found)}"


@pytest.mark.parametrize("name", [n for n in ALL if EXPECTED[n].kind != "drop"])
def test_no_provisional_response_after_the_final_one(report, name):
    # RFC 3261 §17.2.1: once the final response is sent the transaction is Completed; a 100
    # Trying after it is out of order (a UAC may take it for a new provisional state).
    for transport in ("udp", "tcp"):
        found = entry(report, name, transport)
        answered = set()  # (Call-ID, CSeq) of the requests with a final response
        for response in found["responses"]:
            request = (response.get("call_id"), response.get("cseq"))
            if response.get("status", 0) >= 200:
                answered.add(request)
            elif request in answered:
                pytest.fail(f"{response.get('start')} after the final response\n{show(found)}")


def test_specific_answers_carry_their_headers(report):
    problems = []

    def one(name: str, header: str, *needles: str) -> None:
        [answer] = finals(entry(report, name, "udp"))[:1] or [None]
        values = ", ".join((answer or {}).get("headers", {}).get(header, []))
        if answer is None or not all(n.lower() in values.lower() for n in needles):
            problems.append(f"{name}: {header} should name {needles}; got {values!r}")

    one("bext01", "unsupported", "nothingSupportsThis", "nothingSupportsThisEither")
    handled = ("INVITE", "OPTIONS") if INVITE_HANDLED else ("MESSAGE", "OPTIONS")
    if INVITE_HANDLED:
        one("invut", "accept", "application/sdp")
        one("sdp01", "warning", "399")
    else:
        one("invut", "allow", *handled)
    one("intmeth", "allow", *handled)
    one("esc02", "allow", *handled)
    one("mismatch02", "allow", "OPTIONS")
    one("escnull", "allow", handled[0])
    one("regaut01", "allow", handled[0])
    assert not problems, "\n".join(problems)


def test_options_to_a_user_of_the_daemon_is_answered_200(report):
    # RFC 3261 §11.2: a UAS answers OPTIONS as it would an INVITE: 200 with Allow and Accept.
    # lwsdisp, transports and zeromf are valid OPTIONS to sip:user@example.com, a user here.
    wrong = {}
    for name in OPTIONS_TO_KNOWN_USER:
        found = entry(report, name, "udp")
        answer = finals(found)[:1]
        if not answer or answer[0]["status"] != 200 or "allow" not in answer[0]["headers"]:
            wrong[name] = show(found)
    assert not wrong, "\n".join(wrong.values())


def test_dblreq_trailing_octets_are_ignored_over_udp(report):
    found = entry(report, "dblreq", "udp")
    invite_call_id = "dblreq.0ha0isnda977644900765@192.0.2.15"
    assert all(r["call_id"] != invite_call_id for r in found["responses"] + found["late"])
    assert [r["status"] for r in finals(found)][:1] == [405]


def test_answers_go_to_the_source_address_not_to_the_via_host(report):
    # RFC 3261 §18.2.1/§18.2.2: `received` is stamped with the source address, and the answer
    # goes there. The namespace has only loopback: an answer sent to the Via's own host
    # (example.com, 192.0.2.x) would fail, and the daemon logs that.
    for run in report["runs"]:
        assert not run["send_failures"], f"{run['run']}:\n" + "\n".join(run["send_failures"])


# -- TCP ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ALL
                                  if n not in TCP_WAITS and n not in TCP_FRAMING_LOST
                                  and n != "dblreq"])
def test_tcp_answer_and_the_connection_stays(report, name):
    found = entry(report, name, "tcp")
    check_expectation(found, EXPECTED[name])
    assert not found["closed_by_daemon"], f"the daemon closed the connection\n{show(found)}"
    assert found["probe_answered"], f"nothing answered the OPTIONS sent after it\n{show(found)}"
    assert not found["new_connections_to_5060"], "answered over a new connection"


@pytest.mark.parametrize("name", sorted(TCP_WAITS))
def test_tcp_message_that_cannot_frame_waits_then_closes(report, name):
    found = entry(report, name, "tcp")
    assert found["framing"] == "incomplete"
    assert not found["answered_while_waiting"], f"{TCP_WAITS[name]}\n{show(found)}"
    assert not found["closed_while_waiting"], f"{TCP_WAITS[name]}\n{show(found)}"
    # We then stop sending (half-close): the daemon gives up on the message and closes.
    assert found["closed_by_daemon"], f"still open after our half-close\n{show(found)}"
    assert not finals(found) or {r["status"] for r in finals(found)} == {400}, show(found)


@pytest.mark.parametrize("name", sorted(TCP_FRAMING_LOST))
def test_tcp_framing_lost_is_answered_400_then_closed(report, name):
    found = entry(report, name, "tcp")
    assert found["framing"] == "broken"
    assert [r["status"] for r in finals(found)] == [400], f"{TCP_FRAMING_LOST[name]}\n" \
                                                          f"{show(found)}"
    assert found["closed_by_daemon"], f"the connection must close\n{show(found)}"


def test_tcp_dblreq_is_two_messages_and_then_lost_framing(report):
    # On a stream the octets after the REGISTER are the next message: the INVITE (to joe, no
    # user here) with 150 octets of body; the 5 octets after it ("C\r\n\r\n": the body is 155
    # octets long) make a message without Content-Length: framing is lost, the connection
    # closes. RFC 4475 §3.1.1.8 is about UDP; this only checks that the daemon copes.
    found = entry(report, "dblreq", "tcp")
    by_method = Counter((r["cseq"] or "").split()[-1] for r in finals(found))
    assert by_method["REGISTER"] == 1 and [r["status"] for r in finals(found)][0] == 405, \
        show(found)
    assert found["closed_by_daemon"], show(found)


# -- the daemon afterwards ---------------------------------------------------------------------

def runs(report):
    return {run["run"]: run for run in report["runs"]}


def test_four_daemons_ran(report):
    # udp-1/tcp-1: 46 messages; udp-2/tcp-2: the 3 that share a transaction key with one of
    # them (cparam02, regescrt, unkscm), which one daemon would take for retransmissions.
    assert sorted(runs(report)) == ["tcp-1", "tcp-2", "udp-1", "udp-2"]


@pytest.mark.parametrize("run", ["udp-1", "udp-2", "tcp-1", "tcp-2"])
def test_daemon_alive_and_rpc_answers_after_all_messages(report, run):
    info = runs(report)[run]
    assert info["alive"], info["log_tail"]
    assert info.get("version", {}).get("name") == "sipd", info.get("version_error")
    assert info["exit_code"] == 0, info["log_tail"]


@pytest.mark.parametrize("run", ["udp-1", "udp-2", "tcp-1", "tcp-2"])
def test_valid_options_still_gets_200(report, run):
    info = runs(report)[run]
    for transport in ("udp", "tcp"):
        answer = info["options"][transport]
        assert answer is not None, f"{run}: no answer to OPTIONS over {transport}"
        assert answer["status"] == 200, f"{run}, OPTIONS over {transport}:\n{answer['raw']}"
        for name in ("allow", "accept", "supported"):
            assert name in answer["headers"], f"{run}: no {name} in\n{answer['raw']}"


@pytest.mark.parametrize("run", ["udp-1", "udp-2", "tcp-1", "tcp-2"])
def test_no_traceback_in_the_log(report, run):
    info = runs(report)[run]
    lines = (info["log"] or "").splitlines()
    excerpts = ["\n".join(lines[max(0, i - 3):i + 14]) for i in info["tracebacks"][:3]]
    assert not info["tracebacks"], f"{run}: {len(info['tracebacks'])} tracebacks in " \
        f"{info['log_path']}:\n" + "\n...\n".join(excerpts)
