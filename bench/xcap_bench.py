"""XCAP: the document manager against bare httpx, and start-up with a warm cache against a
cold one, with Kamailio's xcap_server (tests/peers/kamailio.py, HTTP digest, db_text).

    python -m bench.xcap_bench [--contacts 500] [--rounds 3]

- `contacts.add` equivalent: the manager's add_contact, one at a time (journal append and
  fsync, whole-document PUT with If-Match, cache write, journal done) against the same PUTs
  (the same growing document, If-Match on the previous ETag) made with a bare
  httpx.AsyncClient with digest auth. Both against the same server, alternating rounds.
- start-up: XcapDocumentManager.start() with an empty state directory (GETs with bodies)
  against one with the documents cached (If-None-Match, 304s).
Not a test: it prints numbers (the lead folds them into docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from sipd.xcap.operations import ContactSet
from sipd.xcap.trio.client import XcapClient
from sipd.xcap.trio.manager import XcapDocumentManager
from sipd.xcap.uri import XcapUri
from sipd.xcap.xmldoc import serialize
from tests.peers.kamailio import Kamailio

PASSWORD = "bench-secret"


async def manager_adds(root: str, xui: str, state: Path, count: int, prefix: str) -> float:
    async with XcapClient(root, username=xui.split(":")[1].split("@")[0],
                          password=PASSWORD) as client:
        manager = XcapDocumentManager(client, xui=xui, state_dir=state)
        await manager.start()
        started = time.perf_counter()
        for index in range(count):
            await manager.add_contact(f"sip:{prefix}{index}@example.test", name=f"User {index}")
        return time.perf_counter() - started


async def bare_adds(root: str, xui: str, count: int, prefix: str) -> float:
    uri = str(XcapUri(root, "resource-lists", "index", xui))
    user = xui.split(":")[1].split("@")[0]
    bodies = []
    document = None
    for index in range(count):  # the documents the manager sends, made beforehand
        document = ContactSet("resource-lists", "index", uri=f"sip:{prefix}{index}@example.test",
                              name=f"User {index}").apply(document)
        bodies.append(serialize(document))
    async with httpx.AsyncClient(auth=httpx.DigestAuth(user, PASSWORD)) as http:
        response = await http.get(uri)
        etag = response.headers.get("etag")
        started = time.perf_counter()
        for body in bodies:
            headers = {"Content-Type": "application/resource-lists+xml"}
            headers.update({"If-Match": etag} if etag else {"If-None-Match": '"*"'})
            response = await http.put(uri, content=body, headers=headers)
            response.raise_for_status()
            etag = response.headers["etag"]
        return time.perf_counter() - started


async def start_up(root: str, xui: str, state: Path) -> float:
    user = xui.split(":")[1].split("@")[0]
    async with XcapClient(root, username=user, password=PASSWORD) as client:
        manager = XcapDocumentManager(client, xui=xui, state_dir=state)
        started = time.perf_counter()
        await manager.start()
        return time.perf_counter() - started


async def run(kam: Kamailio, contacts: int, rounds: int) -> None:
    root = f"http://127.0.0.1:{kam.xcap_port}/xcap-root"
    ours, bare, cold, warm = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            xui_a = f"sip:m{round_}@{kam.domain}"
            xui_b = f"sip:b{round_}@{kam.domain}"
            ours.append(await manager_adds(root, xui_a, Path(scratch) / f"m{round_}", contacts,
                                           "c"))
            bare.append(await bare_adds(root, xui_b, contacts, "c"))
            cold.append(await start_up(root, xui_a, Path(scratch) / f"cold{round_}"))
            warm.append(await start_up(root, xui_a, Path(scratch) / f"m{round_}"))
    print(f"{contacts} contacts added one by one, {rounds} rounds (median):")
    print(f"  document manager  {statistics.median(ours) * 1000:8.1f} ms "
          f"({statistics.median(ours) / contacts * 1000:.2f} ms per contact)")
    print(f"  bare httpx PUTs   {statistics.median(bare) * 1000:8.1f} ms "
          f"({statistics.median(bare) / contacts * 1000:.2f} ms per contact)")
    print(f"  ratio             {statistics.median(ours) / statistics.median(bare):8.2f}x")
    print(f"start-up with {contacts} contacts: cold cache {statistics.median(cold) * 1000:.1f} ms,"
          f" warm cache (304s) {statistics.median(warm) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    users = {f"{kind}{i}": PASSWORD for kind in "mb" for i in range(args.rounds)}
    with tempfile.TemporaryDirectory() as base:
        kam = Kamailio(Path(base), users=users, tls=False, features={"xcap"}, debug=1)
        kam.start()
        try:
            trio.run(run, kam, args.contacts, args.rounds)
        finally:
            kam.stop()


if __name__ == "__main__":
    main()
