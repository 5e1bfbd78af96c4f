"""common-policy rule sets (RFC 4745): rules of conditions, actions and transformations.

A rule applies when all its conditions hold; of the rules that apply, each action takes the
most permissive value any of them gives (§10: the combining is the application's business, for
presence the largest sub-handling). sipd reads the identity conditions (one id, many with an
optional domain and its exceptions), knows that sphere and validity exist, and leaves actions
and transformations to the application (presrules.py) as elements.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from lxml import etree

from sipd.xcap.usages import NS_COMMON_POLICY
from sipd.xcap.xmldoc import expect_root, parse_document

NS = NS_COMMON_POLICY
_CP = f"{{{NS}}}"
TAG_RULESET = f"{_CP}ruleset"
TAG_RULE = f"{_CP}rule"
TAG_CONDITIONS = f"{_CP}conditions"
TAG_ACTIONS = f"{_CP}actions"
TAG_TRANSFORMATIONS = f"{_CP}transformations"
TAG_IDENTITY = f"{_CP}identity"
TAG_ONE = f"{_CP}one"
TAG_MANY = f"{_CP}many"
TAG_EXCEPT = f"{_CP}except"
TAG_SPHERE = f"{_CP}sphere"
TAG_VALIDITY = f"{_CP}validity"


@dataclass(frozen=True)
class Except:
    id: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class Many:
    """Any identity (in `domain`, when given) except those listed."""

    domain: str | None = None
    excepts: tuple[Except, ...] = ()

    def matches(self, identity: str) -> bool:
        domain = identity_domain(identity)
        if self.domain is not None and domain != self.domain.lower():
            return False
        for exception in self.excepts:
            if exception.id is not None and same_identity(exception.id, identity):
                return False
            if exception.domain is not None and domain == exception.domain.lower():
                return False
        return True


@dataclass(frozen=True)
class Identity:
    ones: tuple[str, ...] = ()
    manys: tuple[Many, ...] = ()

    def matches(self, identity: str) -> bool:
        return (any(same_identity(one, identity) for one in self.ones)
                or any(many.matches(identity) for many in self.manys))


@dataclass(frozen=True)
class Conditions:
    #: None: no identity condition (the rule applies to anyone)
    identity: Identity | None = None
    sphere: str | None = None
    #: whether the rule carries a validity condition (time ranges), which sipd does not judge
    has_validity: bool = False

    def matches(self, identity: str) -> bool:
        return self.identity is None or self.identity.matches(identity)


@dataclass(frozen=True)
class Rule:
    id: str
    conditions: Conditions = field(default_factory=Conditions)
    #: action elements by local name -> text (e.g. {"sub-handling": "allow"})
    actions: dict[str, str] = field(default_factory=dict)
    #: local names of the transformation elements
    transformations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ruleset:
    rules: tuple[Rule, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None


def parse_ruleset(data: bytes, what: str = "common-policy document") -> Ruleset:
    return ruleset_from_element(parse_document(data, what=what), what)


def ruleset_from_element(root: etree._Element,
                         what: str = "common-policy document") -> Ruleset:
    expect_root(root, NS, "ruleset", what)
    return Ruleset(tuple(rule_from_element(rule) for rule in root.iterchildren(TAG_RULE)))


def rule_from_element(element: etree._Element) -> Rule:
    conditions = element.find(TAG_CONDITIONS)
    actions = element.find(TAG_ACTIONS)
    transformations = element.find(TAG_TRANSFORMATIONS)
    return Rule(
        element.get("id", ""),
        conditions_from_element(conditions) if conditions is not None else Conditions(),
        {_local(child): (child.text or "").strip()
         for child in (actions if actions is not None else ()) if isinstance(child.tag, str)},
        tuple(_local(child) for child in (transformations if transformations is not None else ())
              if isinstance(child.tag, str)),
    )


def conditions_from_element(element: etree._Element) -> Conditions:
    identity = element.find(TAG_IDENTITY)
    sphere = element.find(TAG_SPHERE)
    return Conditions(
        identity_from_element(identity) if identity is not None else None,
        sphere.get("value") if sphere is not None else None,
        element.find(TAG_VALIDITY) is not None,
    )


def identity_from_element(element: etree._Element) -> Identity:
    ones = tuple(one.get("id", "") for one in element.iterchildren(TAG_ONE) if one.get("id"))
    manys = tuple(
        Many(many.get("domain"),
             tuple(Except(e.get("id"), e.get("domain")) for e in many.iterchildren(TAG_EXCEPT)))
        for many in element.iterchildren(TAG_MANY))
    return Identity(ones, manys)


def new_root() -> etree._Element:
    return etree.Element(TAG_RULESET, nsmap={None: NS})


def identity_domain(identity: str) -> str:
    """The domain of a sip:, sips: or tel-less identity, lower case ('' when it has none)."""
    rest = identity.split(":", 1)[1] if ":" in identity.split("@", 1)[0] else identity
    return rest.rpartition("@")[2].split(";")[0].split(">")[0].lower()


def same_identity(a: str, b: str) -> bool:
    """RFC 4745 §7.2: ids compare as URIs; scheme and host are case-insensitive."""
    return normalize_identity(a) == normalize_identity(b)


@functools.lru_cache(maxsize=8192)
def normalize_identity(identity: str) -> str:
    identity = identity.strip()
    scheme, colon, rest = identity.partition(":")
    if not colon:
        return identity
    user, at, host = rest.rpartition("@")
    if not at:
        return f"{scheme.lower()}:{rest.lower()}"
    return f"{scheme.lower()}:{user}@{host.lower()}"


def _local(element: etree._Element) -> str:
    return str(element.tag).rpartition("}")[2]
