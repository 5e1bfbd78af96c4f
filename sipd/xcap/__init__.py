"""XCAP (RFC 4825) client and the document manager built on it.

The modules in this folder are the sans-I/O core: XCAP URIs and node selectors, the document
formats (resource-lists, rls-services, pres-rules on common-policy, pidf-manipulation,
xcap-caps, xcap-error, xcap-diff), parsed and built with lxml safely, and the edits the
document manager makes expressed as operations that can be replayed on a fresh copy of a
document after a 412. They do no I/O and never import trio or httpx; `sipd/xcap/trio/` holds
the HTTP client (httpx), the on-disk cache and journal, and the manager that drives them.
"""
