"""pres-rules (RFC 5025): who may see our presence, as common-policy rules.

The action is sub-handling: block < confirm < polite-block < allow (RFC 5025 §3.2.1, in that
order of permission). sipd keeps its own decisions in one rule per action for watchers named by
`<one id>` (`sipd_allow`, `sipd_block`, ...) and one per action for domains, `<many domain>`
(`sipd_allow_domains`, ...), and keeps the rule set free of overlaps: a watcher named on its own
is excepted from every domain rule of another action that would match it, and the watchers'
rules come before every rule that names a domain (or no one). So the result is the same whether
a server combines rules as RFC 4745 says (the most permissive applies) or takes the first that
matches, as Kamailio's presence_xml does, even one that ignores `<except>` (Kamailio's does).
Rules written by other clients stay as they are, except that a watcher or domain sipd decides
about is taken out of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sipd.xcap.commonpolicy import (
    TAG_ACTIONS,
    TAG_CONDITIONS,
    TAG_EXCEPT,
    TAG_IDENTITY,
    TAG_MANY,
    TAG_ONE,
    TAG_RULE,
    TAG_TRANSFORMATIONS,
    Ruleset,
    identity_domain,
    same_identity,
)
from sipd.xcap.errors import XcapEditError
from sipd.xcap.usages import NS_PRES_RULES

NS = NS_PRES_RULES
_PR = f"{{{NS}}}"
TAG_SUB_HANDLING = f"{_PR}sub-handling"

#: sub-handling values, least permissive first
SUB_HANDLING = ("block", "confirm", "polite-block", "allow")
RULE_IDS = {action: f"sipd_{action.replace('-', '_')}" for action in SUB_HANDLING}
DOMAIN_RULE_IDS = {action: f"{rule_id}_domains" for action, rule_id in RULE_IDS.items()}

#: what an allow rule lets a watcher see: everything (RFC 5025 §3.3)
_ALLOW_TRANSFORMATIONS = (
    ("provide-services", "all-services"),
    ("provide-persons", "all-persons"),
    ("provide-devices", "all-devices"),
    ("provide-all-attributes", None),
)


@dataclass(frozen=True)
class WatcherPolicy:
    """A decision about one watcher (`kind` "watcher", `target` a URI) or a whole domain."""

    target: str
    kind: str
    action: str
    rule: str


def sub_handling(actions: dict[str, str]) -> str | None:
    value = actions.get("sub-handling")
    return value if value in SUB_HANDLING else None


def effective_action(ruleset: Ruleset, identity: str) -> str | None:
    """The sub-handling for `identity`: the most permissive of the rules that match it."""
    best: str | None = None
    for rule in ruleset.rules:
        action = sub_handling(rule.actions)
        if action is None or not rule.conditions.matches(identity):
            continue
        if best is None or SUB_HANDLING.index(action) > SUB_HANDLING.index(best):
            best = action
    return best


def policies(ruleset: Ruleset) -> list[WatcherPolicy]:
    """Every watcher and domain that a rule with a sub-handling names, in document order."""
    found: list[WatcherPolicy] = []
    for rule in ruleset.rules:
        action = sub_handling(rule.actions)
        identity = rule.conditions.identity
        if action is None or identity is None:
            continue
        found.extend(WatcherPolicy(one, "watcher", action, rule.id) for one in identity.ones)
        found.extend(WatcherPolicy(many.domain, "domain", action, rule.id)
                     for many in identity.manys if many.domain)
    return found


def check_action(action: str) -> None:
    if action not in SUB_HANDLING:
        raise XcapEditError(f"{action!r} is not a presence policy; use one of "
                            f"{', '.join(SUB_HANDLING)}")


def set_watcher_policy(root: etree._Element, watcher: str, action: str) -> None:
    """Make `action` the policy for `watcher` (a URI) in the ruleset `root`, in place."""
    check_action(action)
    _remove_ones(root, watcher)
    rule = _sipd_rule(root, action)
    etree.SubElement(_identity(rule), TAG_ONE, id=watcher)
    for other in root.iterchildren(TAG_RULE):
        other_action = _rule_action(other)
        for many in _manys(other):
            _remove_excepts(many, watcher=watcher)
            if other_action not in (None, action) and _many_matches(many, watcher):
                etree.SubElement(many, TAG_EXCEPT, id=watcher)


def set_domain_policy(root: etree._Element, domain: str, action: str) -> None:
    """Make `action` the policy for everyone in `domain` not decided about one by one."""
    check_action(action)
    domain = domain.strip().lower()
    if not domain or "@" in domain or ":" in domain:
        raise XcapEditError(f"{domain!r} is not a domain")
    _remove_domain(root, domain)
    rule = _sipd_rule(root, action, domains=True)
    many = etree.SubElement(_identity(rule), TAG_MANY, domain=domain)
    for other in root.iterchildren(TAG_RULE):
        if _rule_action(other) in (None, action):
            continue
        for one in list(_ones(other)):
            one_id = one.get("id", "")
            if identity_domain(one_id) == domain:
                etree.SubElement(many, TAG_EXCEPT, id=one_id)


def clear_watcher_policy(root: etree._Element, watcher: str) -> None:
    """Forget sipd's decision about `watcher`: the domain rules (or the server) decide again."""
    _remove_ones(root, watcher)
    for rule in root.iterchildren(TAG_RULE):
        for many in _manys(rule):
            _remove_excepts(many, watcher=watcher)


def clear_domain_policy(root: etree._Element, domain: str) -> None:
    _remove_domain(root, domain.strip().lower())


def new_sipd_rule(action: str, *, domains: bool = False) -> etree._Element:
    rule_id = (DOMAIN_RULE_IDS if domains else RULE_IDS)[action]
    rule = etree.Element(TAG_RULE, id=rule_id, nsmap={"pr": NS})
    etree.SubElement(etree.SubElement(rule, TAG_CONDITIONS), TAG_IDENTITY)
    etree.SubElement(etree.SubElement(rule, TAG_ACTIONS), TAG_SUB_HANDLING).text = action
    if action == "allow":
        transformations = etree.SubElement(rule, TAG_TRANSFORMATIONS)
        for name, child in _ALLOW_TRANSFORMATIONS:
            element = etree.SubElement(transformations, f"{_PR}{name}")
            if child:
                etree.SubElement(element, f"{_PR}{child}")
    return rule


# -- the tree ------------------------------------------------------------------------------


def _rule_action(rule: etree._Element) -> str | None:
    actions = rule.find(TAG_ACTIONS)
    if actions is None:
        return None
    element = actions.find(TAG_SUB_HANDLING)
    value = (element.text or "").strip() if element is not None else ""
    return value if value in SUB_HANDLING else None


def _sipd_rule(root: etree._Element, action: str, *, domains: bool = False) -> etree._Element:
    """sipd's rule for `action` on watchers (ahead of every rule that names a domain, which a
    first-match server must not reach for them) or on domains (at the end)."""
    rule_id = (DOMAIN_RULE_IDS if domains else RULE_IDS)[action]
    rule = next((r for r in root.iterchildren(TAG_RULE) if r.get("id") == rule_id), None)
    if rule is None:
        rule = new_sipd_rule(action, domains=domains)
        root.append(rule)
    if not domains:
        # a rule of an older sipd held the action's domains too: they move to their own
        for many in _manys(rule):
            _identity(_sipd_rule(root, action, domains=True)).append(many)
        first = next((r for r in root.iterchildren(TAG_RULE) if _names_many(r)), None)
        if first is not None and root.index(first) < root.index(rule):
            first.addprevious(rule)
    return rule


def _names_many(rule: etree._Element) -> bool:
    """Whether the rule can match watchers it does not name one by one."""
    identity = rule.find(f"{TAG_CONDITIONS}/{TAG_IDENTITY}")
    return identity is None or identity.find(TAG_MANY) is not None


def _identity(rule: etree._Element) -> etree._Element:
    conditions = rule.find(TAG_CONDITIONS)
    if conditions is None:
        conditions = etree.Element(TAG_CONDITIONS)
        rule.insert(0, conditions)
    identity = conditions.find(TAG_IDENTITY)
    if identity is None:
        identity = etree.SubElement(conditions, TAG_IDENTITY)
    return identity


def _ones(rule: etree._Element) -> list[etree._Element]:
    identity = rule.find(f"{TAG_CONDITIONS}/{TAG_IDENTITY}")
    return [] if identity is None else list(identity.iterchildren(TAG_ONE))


def _manys(rule: etree._Element) -> list[etree._Element]:
    identity = rule.find(f"{TAG_CONDITIONS}/{TAG_IDENTITY}")
    return [] if identity is None else list(identity.iterchildren(TAG_MANY))


def _many_matches(many: etree._Element, watcher: str) -> bool:
    domain = many.get("domain")
    return domain is None or domain.lower() == identity_domain(watcher)


def _remove_excepts(many: etree._Element, *, watcher: str) -> None:
    for exception in list(many.iterchildren(TAG_EXCEPT)):
        if exception.get("id") and same_identity(exception.get("id", ""), watcher):
            many.remove(exception)


def _remove_ones(root: etree._Element, watcher: str) -> None:
    for rule in list(root.iterchildren(TAG_RULE)):
        for one in _ones(rule):
            if same_identity(one.get("id", ""), watcher):
                _remove_identity_child(root, rule, one)


def _remove_domain(root: etree._Element, domain: str) -> None:
    for rule in list(root.iterchildren(TAG_RULE)):
        for many in _manys(rule):
            if (many.get("domain") or "").lower() == domain:
                _remove_identity_child(root, rule, many)


def _remove_identity_child(root: etree._Element, rule: etree._Element,
                           child: etree._Element) -> None:
    identity = child.getparent()
    assert identity is not None
    identity.remove(child)
    if len(identity) == 0:
        # An identity condition with nothing in it is invalid, and the rule existed only for
        # the identities now gone.
        root.remove(rule)
