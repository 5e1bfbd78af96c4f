"""The safe XML parser every payload module uses."""

from __future__ import annotations

import pytest

from sipd.messages.xml import XMLPayloadError, parse_xml, safe_parser


def test_parser_settings() -> None:
    parser = safe_parser()
    assert parser is not safe_parser()  # one per parse: parsers are not thread-safe
    root = parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><a xmlns="urn:x"><b>t</b></a>')
    assert root.tag == "{urn:x}a"
    assert root[0].text == "t"


def test_file_entity_is_not_resolved_even_by_the_bare_parser(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("MARKER")
    from lxml import etree

    data = (f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]><a>&x;</a>').encode()
    root = etree.fromstring(data, safe_parser())
    assert "MARKER" not in etree.tostring(root).decode()
    with pytest.raises(XMLPayloadError, match="DOCTYPE"):
        parse_xml(data)


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"<a>", "not well-formed"),
    (b"<a/>" * 10, "not well-formed"),
    ("<a/>", "bytes"),
    (b"<a>" + b"x" * 70_000 + b"</a>", "too large"),
    (b'<?xml version="1.0" encoding="no-such-encoding"?><a/>', "XML"),
])
def test_refusals(data, problem: str) -> None:
    with pytest.raises(XMLPayloadError, match=problem):
        parse_xml(data)


def test_limit_is_adjustable() -> None:
    assert parse_xml(b"<a>" + b"x" * 70_000 + b"</a>", max_bytes=100_000).tag == "a"
    with pytest.raises(XMLPayloadError):
        parse_xml(b"<a>xxxx</a>", max_bytes=5)
