"""XCAP node selectors (RFC 4825 §6.3): which element or attribute of a document a URI names.

    selector = NodeSelector.parse('resource-lists/list[@name="friends"]/entry[2]/@uri')
    selector.steps[1]     # Step(name='list', attribute=('name', 'friends'))
    str(selector)         # the same text back (before percent-encoding, see uri.py)
    selector.select(root, default_namespace, {"p": "urn:x"})  # the elements it picks

A step names an element (a QName or `*`), optionally with a position among the siblings that
match the name and/or an attribute test. The selector ends with the element steps, an attribute
selector (`@name`) or the namespace selector (`namespace::*`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from sipd.xcap.errors import XcapUriError

_NCNAME = r"[A-Za-z_\u00C0-\uFFFF][\w.\-\u00B7\u00C0-\uFFFF]*"
_QNAME = rf"(?:{_NCNAME}:)?{_NCNAME}"
_QNAME_RE = re.compile(rf"^{_QNAME}$")
_STEP_RE = re.compile(
    rf"""^(?P<name>{_QNAME}|\*)
         (?:\[(?P<pos>[0-9]+)\])?
         (?:\[@(?P<attr>{_QNAME})=(?P<value>"[^"]*"|'[^']*')\])?$""",
    re.VERBOSE)
_ENTITY_RE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|quot|apos|amp|lt|gt);")
_NAMED = {"quot": '"', "apos": "'", "amp": "&", "lt": "<", "gt": ">"}

NAMESPACE_SELECTOR = "namespace::*"


@dataclass(frozen=True)
class Step:
    """One element step: `name`, `name[3]`, `name[@attr="v"]` or `name[3][@attr="v"]`."""

    name: str
    position: int | None = None
    attribute: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.name != "*" and not _QNAME_RE.match(self.name):
            raise XcapUriError(f"{self.name!r} is not an element name for a node selector")
        if self.position is not None and self.position < 1:
            raise XcapUriError("node selector positions start at 1")
        if self.attribute is not None and not _QNAME_RE.match(self.attribute[0]):
            raise XcapUriError(f"{self.attribute[0]!r} is not an attribute name")

    def __str__(self) -> str:
        text = self.name
        if self.position is not None:
            text += f"[{self.position}]"
        if self.attribute is not None:
            text += f"[@{self.attribute[0]}={quote_value(self.attribute[1])}]"
        return text


@dataclass(frozen=True)
class NodeSelector:
    steps: tuple[Step, ...]
    #: None, "@qname" (an attribute selector) or "namespace::*"
    terminal: str | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise XcapUriError("a node selector needs at least one element step")
        if self.terminal is not None and self.terminal != NAMESPACE_SELECTOR:
            if not (self.terminal.startswith("@") and _QNAME_RE.match(self.terminal[1:])):
                raise XcapUriError(f"{self.terminal!r} is not an attribute or namespace selector")

    @classmethod
    def of(cls, *steps: Step | str, attribute: str | None = None) -> NodeSelector:
        """NodeSelector.of("resource-lists", Step("list", attribute=("name", "x")))."""
        made = tuple(step if isinstance(step, Step) else Step(step) for step in steps)
        return cls(made, f"@{attribute}" if attribute else None)

    @classmethod
    def parse(cls, text: str) -> NodeSelector:
        """The selector in `text` (already percent-decoded); XcapUriError when malformed."""
        if not text or text.startswith("/"):
            raise XcapUriError(f"node selector {text!r} must start with an element name")
        parts = _split_steps(text)
        terminal = None
        last = parts[-1]
        if last == NAMESPACE_SELECTOR or last.startswith("@"):
            terminal = last
            parts = parts[:-1]
        steps = []
        for part in parts:
            match = _STEP_RE.match(part)
            if match is None:
                raise XcapUriError(f"node selector step {part!r} is malformed")
            attribute = None
            if match["attr"] is not None:
                attribute = (match["attr"], unquote_value(match["value"]))
            position = int(match["pos"]) if match["pos"] is not None else None
            steps.append(Step(match["name"], position, attribute))
        return cls(tuple(steps), terminal)

    def __str__(self) -> str:
        text = "/".join(str(step) for step in self.steps)
        return f"{text}/{self.terminal}" if self.terminal else text

    @property
    def attribute(self) -> str | None:
        """The attribute an attribute selector names, None for an element selector."""
        if self.terminal and self.terminal.startswith("@"):
            return self.terminal[1:]
        return None

    @property
    def element_selector(self) -> NodeSelector:
        return NodeSelector(self.steps)

    def prefixes(self) -> set[str]:
        """The namespace prefixes the selector uses (each needs an xmlns() binding)."""
        names = [step.name for step in self.steps]
        names += [step.attribute[0] for step in self.steps if step.attribute]
        if self.attribute:
            names.append(self.attribute)
        return {name.partition(":")[0] for name in names if ":" in name}

    def select(self, root: etree._Element, default_namespace: str,
               namespaces: Mapping[str, str] | None = None) -> list[etree._Element]:
        """The elements the element steps pick in the tree of `root` (RFC 4825 §6.3: unprefixed
        names are in the application usage's default namespace, prefixed ones are bound by the
        URI's xmlns() query). XcapUriError for a prefix with no binding."""
        bindings = dict(namespaces or {})
        first, *rest = self.steps
        found = [root] if _matches(root, first, default_namespace, bindings) else []
        if first.position not in (None, 1):
            found = []
        for step in rest:
            picked: list[etree._Element] = []
            for parent in found:
                picked.extend(_children(parent, step, default_namespace, bindings))
            found = picked
        return found


def quote_value(value: str) -> str:
    """An attribute value as an AttValue: "..." unless it contains a double quote."""
    if '"' not in value:
        return f'"{_escape(value)}"'
    if "'" not in value:
        return f"'{_escape(value)}'"
    return '"' + _escape(value).replace('"', "&quot;") + '"'


def unquote_value(quoted: str) -> str:
    return _ENTITY_RE.sub(_entity, quoted[1:-1])


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;")


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.startswith("#x"):
        return chr(int(name[2:], 16))
    if name.startswith("#"):
        return chr(int(name[1:]))
    return _NAMED[name]


def _split_steps(text: str) -> list[str]:
    """Split at "/" outside quoted attribute values (a value may hold a URI with slashes)."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "/":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise XcapUriError(f"node selector {text!r} has an unterminated quoted value")
    parts.append("".join(current))
    if any(not part for part in parts):
        raise XcapUriError(f"node selector {text!r} has an empty step")
    return parts


def _expand(name: str, default_namespace: str, bindings: Mapping[str, str]) -> tuple[str, str]:
    prefix, colon, local = name.partition(":")
    if not colon:
        return default_namespace, name
    if prefix not in bindings:
        raise XcapUriError(f"node selector prefix {prefix!r} has no xmlns() binding")
    return bindings[prefix], local


def _attribute_key(name: str, bindings: Mapping[str, str]) -> str:
    # Unprefixed attributes are in no namespace, whatever the default namespace is.
    prefix, colon, local = name.partition(":")
    if not colon:
        return name
    if prefix not in bindings:
        raise XcapUriError(f"node selector prefix {prefix!r} has no xmlns() binding")
    return f"{{{bindings[prefix]}}}{local}"


def _name_matches(element: etree._Element, name: str, default_namespace: str,
                  bindings: Mapping[str, str]) -> bool:
    if not isinstance(element.tag, str):
        return False
    if name == "*":
        return True
    namespace, local = _expand(name, default_namespace, bindings)
    return element.tag == (f"{{{namespace}}}{local}" if namespace else local)


def _matches(element: etree._Element, step: Step, default_namespace: str,
             bindings: Mapping[str, str]) -> bool:
    if not _name_matches(element, step.name, default_namespace, bindings):
        return False
    if step.attribute is not None:
        key = _attribute_key(step.attribute[0], bindings)
        return element.get(key) == step.attribute[1]
    return True


def _children(parent: etree._Element, step: Step, default_namespace: str,
              bindings: Mapping[str, str]) -> list[etree._Element]:
    named = [child for child in parent
             if _name_matches(child, step.name, default_namespace, bindings)]
    if step.position is not None:
        named = named[step.position - 1:step.position]
    if step.attribute is not None:
        key = _attribute_key(step.attribute[0], bindings)
        named = [child for child in named if child.get(key) == step.attribute[1]]
    return named
