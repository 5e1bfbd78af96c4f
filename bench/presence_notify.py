"""How fast sipd takes in presence NOTIFYs, against lxml parsing the same PIDF documents bare.

For each document of the corpus (below: what baresip, linphone and a rich RFC 4479/4480/4482
client publish, and what Kamailio's presence server sends for a pending subscription), an
active subscription (sipd.presence.subscriber.Subscriber, in process, no sockets) is fed
NOTIFYs carrying it, each as the bytes of a datagram, one after the other in its dialog
(CSeq growing). What one NOTIFY costs ("full"):
- SIP: `parse_datagram`, the subscriber's checks (Event, Subscription-State, the dialog and
  its CSeq) and the 200 it answers, built as bytes, as the stack would send it;
- payload: the PIDF parsed safely (sipd/messages/xml.py's parser: no entities, DTDs or network)
  into the data model, RPID and CIPID, and reduced to the view `presence.state` carries
  (sipd.presence.reader.PresenceReader, through the daemon's own Subscription.notified);
- event out: `presence.state` published on an EventBus with one subscribed client, its JSON
  made once (sipd/events.py), as the RPC connection takes it.
"payload" times the second part alone (PresenceReader.read). The baseline, "lxml bare", is
`etree.fromstring` of the body with the same safe parser options and nothing else: the least
any reader of the document does.

Times are CPU time of this process; each reader runs `repeats` times, alternating, and the
best repeat counts (as in bench/sip_parse.py).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from lxml import etree

from sipd.events import EventBus
from sipd.messages.xml import safe_parser
from sipd.presence.actions import SendRequest, SendResponse
from sipd.presence.events import Notified
from sipd.presence.payload import PIDF_TYPE
from sipd.presence.reader import PresenceReader
from sipd.presence.subscriber import Subscriber, SubscribeTarget
from sipd.presence.trio.subscriptions import Subscription
from sipd.sip.builder import build_request, build_response, new_branch
from sipd.sip.header_values import Address, parse_address
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.uri import parse_uri

WATCHER = Address(parse_uri("sip:alice@example.com"), "Alice")
WATCHER_CONTACT = Address(parse_uri("sip:alice@192.0.2.1:5060"))
PRESENTITY = "sip:bob@example.com"
NOTIFIER_CONTACT = "<sip:127.0.0.1:5060>"
RECORD_ROUTE = "<sip:127.0.0.1:5060;lr>"
MAX_NOTIFIES = 200_000  # per subscription: a bound on the prepared datagrams

_RICH = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    xmlns:lt="urn:ietf:params:xml:ns:location-type"
    entity="sip:bob@example.com">
  <tuple id="sg89ae">
    <status><basic>open</basic></status>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <rpid:class>sip</rpid:class>
    <contact priority="0.8">sip:bob@192.0.2.2:5062</contact>
    <timestamp>2026-12-05T22:00:29Z</timestamp>
  </tuple>
  <tuple id="desk">
    <status><basic>closed</basic></status>
    <contact>sip:bob@desk.example.com</contact>
    <note>the desk phone</note>
  </tuple>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:note>in a meeting till noon</rpid:note>
      <rpid:meeting/>
    </rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><lt:office/></rpid:place-type>
    <rpid:privacy><rpid:text/></rpid:privacy>
    <rpid:user-input>idle</rpid:user-input>
    <c:display-name>Bob Builder</c:display-name>
    <c:icon>http://example.com/bob.png</c:icon>
    <c:homepage>http://example.com/~bob</c:homepage>
    <dm:note>Meeting, back at 12 ☕</dm:note>
    <dm:timestamp>2026-12-05T22:02:44+02:00</dm:timestamp>
  </dm:person>
  <dm:device id="pc122">
    <rpid:user-input>idle</rpid:user-input>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <dm:note>PC</dm:note>
    <dm:timestamp>2026-12-05T22:00:27Z</dm:timestamp>
  </dm:device>
</presence>
"""


def _devices(count: int) -> str:
    tuples = "".join(
        f'<tuple id="t{n}"><status><basic>{"open" if n % 2 else "closed"}</basic></status>'
        f"<dm:deviceID>urn:uuid:00000000-0000-0000-0000-{n:012d}</dm:deviceID>"
        f"<contact>sip:bob@192.0.2.{n + 10}:5060</contact>"
        f"<timestamp>2026-12-05T22:00:{n:02d}Z</timestamp></tuple>" for n in range(count))
    devices = "".join(
        f'<dm:device id="d{n}"><dm:deviceID>urn:uuid:00000000-0000-0000-0000-{n:012d}'
        f"</dm:deviceID><rpid:user-input>{'active' if n % 2 else 'idle'}</rpid:user-input>"
        f"</dm:device>" for n in range(count))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.com">'
            f'{tuples}<dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities>'
            f"<dm:note>on the phone</dm:note></dm:person>{devices}</presence>\n")


#: name -> PIDF document, as a notifier sends it
CORPUS: dict[str, bytes] = {
    # baresip's presence module (an empty activities element)
    "baresip": b"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>\r
<presence xmlns="urn:ietf:params:xml:ns:pidf"\r
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"\r
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"\r
    entity="sip:bob@example.com">\r
  <dm:person id="p4159"><rpid:activities/></dm:person>\r
  <tuple id="t4109">\r
    <status>\r
      <basic>open</basic>\r
    </status>\r
    <contact>sip:bob@example.com</contact>\r
  </tuple>\r
</presence>\r
""",
    # linphone (an extension element in the status, the person away)
    "linphone": b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
 xmlns:pidfonline="http://www.linphone.org/xsds/pidfonline.xsd" entity="sip:bob@example.com">
 <tuple id="qmgg7w"><status><basic>open</basic><pidfonline:online/></status>
  <contact priority="0.8">sip:bob@192.0.2.4</contact>
  <timestamp>2026-12-05T10:00:00.123456789Z</timestamp></tuple>
 <dm:person id="fjtxgb"><rpid:activities><rpid:away/></rpid:activities>
  <dm:note xml:lang="en">Back soon</dm:note></dm:person>
</presence>
""",
    # Kamailio's presence_xml for a presentity with no publication (its dummy document)
    "kamailio-empty": b"""<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com">
  <tuple id="615293b33c62dec073e05d9421e9f48b">
    <status>
      <basic>closed</basic>
    </status>
  </tuple>
</presence>
""",
    # RFC 4479/4480/4482 together, as a rich client publishes
    "rich (data model, RPID, CIPID)": _RICH.encode(),
    # one person on 8 devices, each a tuple and a device element
    "8 devices": _devices(8).encode(),
}


def safe_bare_parse(body: bytes) -> object:
    return etree.fromstring(body, safe_parser())


class NotifyStream:
    """An active subscription and the NOTIFYs of its dialog, as datagrams, in order: each
    `next()` is the next one (its CSeq one higher)."""

    def __init__(self, body: bytes, count: int) -> None:
        self.subscriber = Subscriber(SubscribeTarget(parse_uri(PRESENTITY), from_=WATCHER,
                                                     contact=WATCHER_CONTACT),
                                     accept=(PIDF_TYPE,))
        send = next(a for a in self.subscriber.start(0.0) if isinstance(a, SendRequest))
        subscribe = _wire(send.request)
        ok = parse_datagram(build_response(
            subscribe, 200, to_tag="notifier",
            headers=[("Contact", NOTIFIER_CONTACT), ("Expires", "3600")]).to_bytes())
        assert isinstance(ok, Response)
        self.subscriber.response(send.key, ok, 1.0)
        self._datagrams = [_notify(subscribe, cseq, body) for cseq in range(1, count + 1)]
        self._iterator: Iterator[bytes] = iter(self._datagrams)

    def next(self) -> bytes:
        return next(self._iterator)

    def __len__(self) -> int:
        return len(self._datagrams)


def _wire(request: Request) -> Request:
    if not request.headers.values("Via"):
        request = request.copy()
        request.headers.add("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={new_branch()}")
    return parse_datagram(request.to_bytes())  # type: ignore[return-value]


def _notify(subscribe: Request, cseq: int, body: bytes) -> bytes:
    theirs = subscribe.to
    ours = subscribe.from_
    assert theirs is not None and ours is not None
    theirs.tag = "notifier"
    request = build_request(
        "NOTIFY", WATCHER_CONTACT.uri, from_=theirs, to=ours, call_id=subscribe.call_id,
        cseq=cseq, contact=parse_address(NOTIFIER_CONTACT),
        headers=[("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbench{cseq}"),
                 ("Max-Forwards", "70"), ("Event", "presence"),
                 ("Subscription-State", "active;expires=3600"),
                 ("Record-Route", RECORD_ROUTE)],
        body=body, content_type=PIDF_TYPE)
    return request.to_bytes()


class Pipeline:
    """What the daemon does with each NOTIFY of one subscription (see the module's text)."""

    def __init__(self, stream: NotifyStream) -> None:
        self.stream = stream
        self.bus = EventBus(replay_size=100)
        self.delivered = 0
        self.bus.subscribe(["presence"], self._deliver)
        self.subscription = Subscription(
            account=SimpleNamespace(id="bench"),  # type: ignore[arg-type]
            to=PRESENTITY, event="presence", is_list=False,
            driver=SimpleNamespace(machine=stream.subscriber))  # type: ignore[arg-type]

    def _deliver(self, event: Any) -> None:
        self.delivered += len(event.params_json)  # the JSON text the client is sent

    def one(self) -> None:
        request = parse_datagram(self.stream.next())
        assert isinstance(request, Request)
        for action in self.stream.subscriber.notify(request, 2.0):
            if isinstance(action, Notified):
                self.subscription.notified(action, self._publish)
            elif isinstance(action, SendResponse):
                build_response(request, action.status, reason=action.reason).to_bytes()

    def _publish(self, name: str, data: dict[str, Any]) -> None:
        self.bus.publish(name, data)


@dataclass(frozen=True)
class DocumentRate:
    """Best CPU seconds per document, by reader: full, payload, lxml."""
    name: str
    size: int
    notify_size: int
    seconds: dict[str, float]

    def rate(self, reader: str) -> float:
        return 1.0 / self.seconds[reader]

    def times(self, reader: str, baseline: str = "lxml") -> float:
        return self.seconds[reader] / self.seconds[baseline]


@dataclass(frozen=True)
class NotifyResults:
    documents: list[DocumentRate]
    repeats: int
    budget: float


def _timed(function: Callable[[], object], iterations: int) -> float:
    clock = time.process_time
    start = clock()
    for _ in range(iterations):
        function()
    return (clock() - start) / iterations


def _count(function: Callable[[], object], budget: float, cap: int) -> int:
    per_call = max(_timed(function, 5), 1e-8)
    return max(5, min(cap, int(budget / per_call)))


def measure_document(name: str, body: bytes, budget: float, repeats: int) -> DocumentRate:
    reader = PresenceReader(PRESENTITY)
    # how many NOTIFYs one timed loop takes: from a short trial on a stream of its own
    trial = Pipeline(NotifyStream(body, 20))
    per_notify = max(_timed(trial.one, 10), 1e-7)
    full_count = max(5, min(MAX_NOTIFIES // (repeats + 1), int(budget / per_notify)))
    pipeline = Pipeline(NotifyStream(body, full_count * repeats + 1))
    sample = pipeline.stream._datagrams[0]
    pipeline.one()  # the first NOTIFY of the dialog (the reader starts)
    if not pipeline.delivered:
        raise RuntimeError(f"{name}: the NOTIFY produced no presence.state event")
    counts = {"payload": _count(lambda: reader.read(PIDF_TYPE, body), budget, 1_000_000),
              "lxml": _count(lambda: safe_bare_parse(body), budget, 1_000_000)}
    best: dict[str, float] = {}
    for _ in range(repeats):
        for key, function, count in (
                ("full", pipeline.one, full_count),
                ("payload", lambda: reader.read(PIDF_TYPE, body), counts["payload"]),
                ("lxml", lambda: safe_bare_parse(body), counts["lxml"])):
            seconds = _timed(function, count)
            best[key] = min(best.get(key, seconds), seconds)
    return DocumentRate(name, len(body), len(sample), best)


def measure(budget: float, repeats: int, say: Callable[[str], None] = print) -> NotifyResults:
    documents = []
    for name, body in CORPUS.items():
        rate = measure_document(name, body, budget, repeats)
        documents.append(rate)
        say(f"  {name:32} {rate.size:5} B: NOTIFY in, presence.state out "
            f"{rate.rate('full'):8,.0f}/s ({rate.seconds['full'] * 1e6:6.1f} µs), PIDF read "
            f"{rate.seconds['payload'] * 1e6:6.1f} µs, lxml bare {rate.rate('lxml'):9,.0f}/s "
            f"({rate.seconds['lxml'] * 1e6:5.1f} µs): {rate.times('full'):.1f}× lxml")
    return NotifyResults(documents, repeats, budget)


def core_memory_per_subscription(count: int = 300) -> float:
    """Bytes Python allocates for one active subscription's own objects, in process
    (tracemalloc): the Subscriber and its dialog, the SUBSCRIBE it refreshes with, the
    daemon's Subscription record with its reader and the latest state of the contact, after
    one NOTIFY (linphone's document). Not in it: the daemon's task and transactions for it."""
    body = CORPUS["linphone"]
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        kept = []
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            pipeline = Pipeline(NotifyStream(body, 1))
            pipeline.one()
            pipeline.stream._datagrams.clear()
            kept.append((pipeline.stream.subscriber, pipeline.subscription))
        del pipeline
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return (after - before) / count
