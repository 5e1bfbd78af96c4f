"""Dialog state (application/dialog-info+xml, RFC 4235): the calls of a user, for busy lamps;
read from a subscription to someone's `dialog` events, and built to publish our own.

    document = parse_dialog_info(body)       # PayloadError for anything unreadable
    calls = DialogInfoState()
    update = calls.apply(document)           # the dialogs that changed; update.resync
    body = build_dialog_info(DialogInfoDocument("sip:alice@example.com", 3, True, dialogs))

Versions and full/partial state work as for watcher information (sipd.presence.winfo): a
partial document after a gap sets `resync`; a terminated dialog is reported once, then
forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from .payload import (
    DIALOG_INFO_NS,
    InvalidInput,
    PayloadError,
    child,
    children,
    new_document,
    parse_document,
    qname,
    serialize,
    text_of,
    xml_text,
)

__all__ = ["Participant", "DialogEntry", "DialogInfoDocument", "parse_dialog_info",
           "build_dialog_info", "DialogInfoState", "DialogInfoUpdate", "DIALOG_STATES"]

DIALOG_STATES = ("trying", "proceeding", "early", "confirmed", "terminated")
STATE_EVENTS = frozenset({"cancelled", "rejected", "replaced", "local-bye", "remote-bye",
                          "error", "timeout"})
MAX_DIALOGS = 1000


@dataclass(frozen=True)
class Participant:
    identity: str | None = None   # the URI of the party
    display: str | None = None
    target: str | None = None     # its contact (remote target)


@dataclass(frozen=True)
class DialogEntry:
    id: str
    state: str                      # trying, proceeding, early, confirmed, terminated
    direction: str | None = None    # initiator, recipient
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    event: str | None = None        # why it is terminated (cancelled, rejected, local-bye...)
    code: int | None = None         # the SIP status that made the state
    duration: int | None = None     # seconds since it was confirmed
    local: Participant = Participant()
    remote: Participant = Participant()

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "direction": self.direction,
                "event": self.event, "code": self.code, "duration": self.duration,
                "local": self.local.identity, "remote": self.remote.identity,
                "remote_display": self.remote.display}


@dataclass(frozen=True)
class DialogInfoDocument:
    entity: str
    version: int
    full: bool
    dialogs: tuple[DialogEntry, ...] = ()


def parse_dialog_info(data: bytes) -> DialogInfoDocument:
    root = parse_document(data, DIALOG_INFO_NS, "dialog-info", "dialog information")
    version_text = (root.get("version") or "").strip()
    if not version_text.isascii() or not version_text.isdigit() or len(version_text) > 12:
        raise PayloadError(f"dialog information: version {version_text[:20]!r} is not a "
                           f"number")
    state = (root.get("state") or "").strip()
    if state not in ("full", "partial"):
        raise PayloadError(f"dialog information: state must be 'full' or 'partial', not "
                           f"{state[:20]!r}")
    dialogs: list[DialogEntry] = []
    for element in children(root, DIALOG_INFO_NS, "dialog"):
        if len(dialogs) >= MAX_DIALOGS:
            raise PayloadError(f"dialog information: more than {MAX_DIALOGS} dialogs")
        dialogs.append(_dialog(element))
    return DialogInfoDocument((root.get("entity") or "").strip(), int(version_text),
                              state == "full", tuple(dialogs))


def _dialog(element: etree._Element) -> DialogEntry:
    dialog_id = (element.get("id") or "").strip()
    if not dialog_id:
        raise PayloadError("dialog information: a dialog without id")
    state_element = child(element, DIALOG_INFO_NS, "state")
    state = (text_of(state_element, 32) or "").lower()
    if state not in DIALOG_STATES:
        raise PayloadError(f"dialog information: dialog state {state[:20]!r} is not one of "
                           f"{', '.join(DIALOG_STATES)}")
    event = code = None
    if state_element is not None:
        event_text = (state_element.get("event") or "").strip().lower()
        event = event_text if event_text in STATE_EVENTS else None
        code_text = (state_element.get("code") or "").strip()
        if code_text.isascii() and code_text.isdigit() and 100 <= int(code_text[:4]) <= 699:
            code = int(code_text)
    direction = (element.get("direction") or "").strip().lower()
    duration = text_of(child(element, DIALOG_INFO_NS, "duration"), 16)
    return DialogEntry(
        id=dialog_id, state=state,
        direction=direction if direction in ("initiator", "recipient") else None,
        call_id=_attribute(element, "call-id"), local_tag=_attribute(element, "local-tag"),
        remote_tag=_attribute(element, "remote-tag"), event=event, code=code,
        duration=int(duration) if duration is not None and duration.isascii()
        and duration.isdigit() and len(duration) <= 10 else None,
        local=_participant(child(element, DIALOG_INFO_NS, "local")),
        remote=_participant(child(element, DIALOG_INFO_NS, "remote")))


def _attribute(element: etree._Element, name: str) -> str | None:
    return (element.get(name) or "").strip()[:256] or None


def _participant(element: etree._Element | None) -> Participant:
    if element is None:
        return Participant()
    identity = child(element, DIALOG_INFO_NS, "identity")
    target = child(element, DIALOG_INFO_NS, "target")
    return Participant(
        identity=text_of(identity),
        display=(identity.get("display") or "").strip() or None if identity is not None
        else None,
        target=(target.get("uri") or "").strip() or None if target is not None else None)


def build_dialog_info(document: DialogInfoDocument) -> bytes:
    root = new_document(DIALOG_INFO_NS, "dialog-info", {None: DIALOG_INFO_NS},
                        {"version": str(document.version),
                         "state": "full" if document.full else "partial",
                         "entity": xml_text(document.entity, "entity")})
    for dialog in document.dialogs:
        if dialog.state not in DIALOG_STATES:
            raise InvalidInput("state", f"{dialog.state!r} is not a dialog state")
        element = etree.SubElement(root, qname(DIALOG_INFO_NS, "dialog"),
                                   id=xml_text(dialog.id, "id"))
        for name, value in (("call-id", dialog.call_id), ("local-tag", dialog.local_tag),
                            ("remote-tag", dialog.remote_tag),
                            ("direction", dialog.direction)):
            if value is not None:
                element.set(name, xml_text(value, name))
        state = etree.SubElement(element, qname(DIALOG_INFO_NS, "state"))
        state.text = dialog.state
        if dialog.event is not None:
            state.set("event", xml_text(dialog.event, "event"))
        if dialog.code is not None:
            state.set("code", str(dialog.code))
        if dialog.duration is not None:
            etree.SubElement(element, qname(DIALOG_INFO_NS, "duration")).text = \
                str(dialog.duration)
        for name, party in (("local", dialog.local), ("remote", dialog.remote)):
            if party == Participant():
                continue
            holder = etree.SubElement(element, qname(DIALOG_INFO_NS, name))
            if party.identity is not None:
                identity = etree.SubElement(holder, qname(DIALOG_INFO_NS, "identity"))
                identity.text = xml_text(party.identity, "identity")
                if party.display is not None:
                    identity.set("display", xml_text(party.display, "display"))
            if party.target is not None:
                etree.SubElement(holder, qname(DIALOG_INFO_NS, "target"),
                                 uri=xml_text(party.target, "target"))
    return serialize(root)


@dataclass(frozen=True)
class DialogInfoUpdate:
    changed: tuple[DialogEntry, ...] = ()
    resync: bool = False
    entity: str = ""


@dataclass
class DialogInfoState:
    """The dialogs one subscription (or our own publication) knows of."""
    version: int | None = None
    dialogs: dict[str, DialogEntry] = field(default_factory=dict)

    def apply(self, document: DialogInfoDocument) -> DialogInfoUpdate:
        if not document.full:
            if self.version is None or document.version > self.version + 1:
                return DialogInfoUpdate(resync=True, entity=document.entity)
            if document.version <= self.version:
                return DialogInfoUpdate(entity=document.entity)
        elif self.version is not None and document.version <= self.version:
            return DialogInfoUpdate(entity=document.entity)
        self.version = document.version
        changed: list[DialogEntry] = []
        listed = {dialog.id for dialog in document.dialogs}
        if document.full:
            for dialog_id in [d for d in self.dialogs if d not in listed]:
                changed.append(replace(self.dialogs.pop(dialog_id), state="terminated"))
        for dialog in document.dialogs:
            old = self.dialogs.get(dialog.id)
            if dialog.state == "terminated":
                self.dialogs.pop(dialog.id, None)
                changed.append(dialog)
                continue
            self.dialogs[dialog.id] = dialog
            if old is None or old.state != dialog.state:
                changed.append(dialog)
        return DialogInfoUpdate(tuple(changed), entity=document.entity)

    @property
    def busy(self) -> bool:
        """Whether the user is in a call or being called (a lit busy lamp)."""
        return any(d.state != "terminated" for d in self.dialogs.values())
