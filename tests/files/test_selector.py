"""a=file-selector and the other RFC 5547 attributes: what we write, what we read."""

from __future__ import annotations

import datetime
import hashlib
import urllib.parse

import pytest

from sipd.files.errors import FileAttributeError
from sipd.files.naming import safe_name
from sipd.files.sdp import (
    FileDate,
    FileRange,
    FileTransferMedia,
    new_transfer_id,
    parse_file_date,
    parse_file_range,
)
from sipd.files.selector import (
    FileHash,
    FileSelector,
    parse_file_selector,
    parse_hash,
    quote_name,
    unquote_name,
)

DIGEST = hashlib.sha1(b"hello").digest()
HASH_TEXT = "sha-1:" + ":".join(f"{b:02X}" for b in DIGEST)


def test_selector_round_trip():
    selector = FileSelector(name="My \"best\" 100% photo\n.jpg", type="image/jpeg", size=5,
                            hash=FileHash.sha1(DIGEST))
    value = selector.value()
    assert value == ('name:"My %22best%22 100% photo%0A.jpg" type:image/jpeg size:5 '
                     f"hash:{HASH_TEXT}")
    assert parse_file_selector(value) == selector


@pytest.mark.parametrize("name, sent", [
    ("100% done.txt", '"100% done.txt"'),      # Blink reads it as it is: no %25 then
    ("50%.pdf", '"50%.pdf"'),
    ("%41.txt", '"%2541.txt"'),                # an RFC reader would make it A.txt
    ("odd %zz %4", '"odd %zz %4"'),
    ('say "hi".txt', '"say %22hi%22.txt"'),
])
def test_sent_names_read_right_by_rfc_readers_and_by_blink(name, sent):
    """What we send is read back to the same name by an RFC 5547 reader (ours), and a name
    with a `%` that no hex digits follow reaches python-sipsimple (which decodes nothing)
    unchanged."""
    assert quote_name(name) == sent
    assert parse_file_selector(f"name:{sent} size:1").name == name
    assert urllib.parse.unquote(sent) == f'"{name}"'  # what a %XX-decoding reader gets


@pytest.mark.parametrize("value, name", [
    ('name:"say "hi".txt" type:text/plain size:3', 'say "hi".txt'),
    ('name:"say "hi".txt"', 'say "hi".txt'),
    ('name:""quoted"" size:3', '"quoted"'),
    ('name:"a"b" SIZE:3', 'a"b'),
    ('name:"x" y" hash:' + HASH_TEXT, 'x" y'),
])
def test_a_raw_quote_inside_a_name_is_part_of_it(value, name):
    """python-sipsimple (Blink) sends names without percent-encoding: the name ends at the
    quote followed by the end or by another selector."""
    selector = parse_file_selector(value)
    assert selector.name == name
    assert safe_name(selector.name) == name.replace('"', "_")


def test_a_selector_without_size_is_read():
    """doubango's default selector: name and type, no size (RFC 5547: every part optional)."""
    selector = parse_file_selector('name:"x" type:application/octet-stream')
    assert selector == FileSelector(name="x", type="application/octet-stream")
    assert selector.size is None


def test_selector_as_rfc_5547_examples_write_it():
    value = ('name:"My cool picture.jpg" type:image/jpeg size:32349 '
             'hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E')
    selector = parse_file_selector(value)
    assert selector.name == "My cool picture.jpg"
    assert selector.type == "image/jpeg" and selector.size == 32349
    assert str(selector.hash) == value.split("hash:")[1]


def test_selector_is_liberal_where_it_can_be():
    # fields in any order, lower-case hex, sha1 spelling, a bare %, unknown kinds, tabs,
    # a type with quoted parameters holding spaces, upper-case kinds
    selector = parse_file_selector(
        f'SIZE:7\ttype:Text/Plain;charset="UTF-8";x="a b" x-new:thing '
        f'hash:sha1:{DIGEST.hex(":")} name:"100% done.txt"')
    assert selector.size == 7
    assert selector.type == 'text/plain;charset="UTF-8";x="a b"'
    assert selector.media_type == "text/plain"
    assert selector.hash == FileHash.sha1(DIGEST)
    assert selector.name == "100% done.txt"
    assert parse_file_selector("") == FileSelector() and FileSelector().empty
    assert parse_file_selector(None).empty


def test_names_are_utf8_and_percent_decoded():
    assert unquote_name("caf%C3%A9 %E2%82%AC.txt") == "café €.txt"
    assert unquote_name("caf\u0065\u0301.txt") == "caf\u00e9.txt"  # NFC
    assert unquote_name("bad%FF.txt") == "bad\ufffd.txt"
    assert quote_name("a\x00b\rc") == '"a%00b%0Dc"'


@pytest.mark.parametrize("value, words", [
    ('name:"unclosed', "closing quote"),
    ("name:plain.txt", "quoted"),
    ('name:""', "empty name"),
    ("size:-1", "bad size"),
    ("size:12k", "bad size"),
    (f"size:{2**64}", "bad size"),
    ("size:1 size:2", "twice"),
    ("type:image", "type/subtype"),
    ('type:text/plain;charset="utf-8', "closing quote"),
    ("hash:sha-1", "algorithm:hex"),
    ("hash:sha-1:ZZ:00", "hex pairs"),
    ("hash:sha-1:AB:CD", "20 bytes"),
    ("hash:sha-256:" + ":".join(["AB"] * 20), "32 bytes"),
    ("justtext", "no ':'"),
])
def test_bad_selectors_say_what_is_wrong(value, words):
    with pytest.raises(FileAttributeError, match=words):
        parse_file_selector(value)


def test_unknown_hash_algorithms_are_kept_but_not_computable():
    file_hash = parse_hash("sha-3000:AB:CD")
    assert not file_hash.known and file_hash.algorithm == "sha-3000"
    with pytest.raises(ValueError):
        file_hash.new()
    assert parse_hash(HASH_TEXT).new().name == "sha1"


def test_pull_matching():
    have = FileSelector(name="report.pdf", type="application/pdf", size=100,
                        hash=FileHash.sha1(DIGEST))
    assert FileSelector().matches(have)
    assert FileSelector(name="report.pdf").matches(have)
    assert FileSelector(name="report.pdf", size=100, type="APPLICATION/PDF").matches(have)
    assert FileSelector(hash=FileHash.sha1(DIGEST)).matches(have)
    assert FileSelector(type="application/*").matches(have)
    assert not FileSelector(name="Report.pdf").matches(have)
    assert not FileSelector(name="report.pdf", size=101).matches(have)
    assert not FileSelector(hash=FileHash.sha1(bytes(20))).matches(have)
    assert not FileSelector(type="image/*").matches(have)
    assert not FileSelector(type="text/plain").matches(FileSelector(name="x"))


def test_same_file_needs_hash_size_and_name():
    a = FileSelector(name="a.bin", size=3, hash=FileHash.sha1(DIGEST))
    assert a.same_file(FileSelector(name="a.bin", size=3, hash=FileHash.sha1(DIGEST),
                                    type="x/y"))
    assert not a.same_file(FileSelector(name="b.bin", size=3, hash=FileHash.sha1(DIGEST)))
    assert not a.same_file(FileSelector(name="a.bin", size=4, hash=FileHash.sha1(DIGEST)))
    assert not FileSelector(name="a.bin", size=3).same_file(FileSelector(name="a.bin", size=3))


def test_file_range():
    assert parse_file_range("1-*") == FileRange(1, None) and FileRange().whole
    assert parse_file_range(" 1001-2000 ") == FileRange(1001, 2000)
    assert str(FileRange(5, None)) == "5-*"
    assert FileRange(1001, None).length(2000) == 1000
    assert FileRange(1, None).length(0) == 0
    for bad in ("", "5", "a-b", "0-5", "10-5", "-5", "1-**"):
        with pytest.raises(FileAttributeError, match="a=file-range"):
            parse_file_range(bad)
    with pytest.raises(FileAttributeError, match="passes the end"):
        FileRange(1, 2001).resolve(2000)


def test_file_date():
    date = parse_file_date('creation:"Mon, 10 Nov 2008 10:00:00 +0000" '
                           'modification:"Tue, 11 Nov 2008 10:00:00 +0100" future:"x"')
    assert date.creation == datetime.datetime(2008, 11, 10, 10, tzinfo=datetime.UTC)
    assert date.modification is not None and date.read is None
    assert parse_file_date(date.value()) == date
    with pytest.raises(FileAttributeError, match="RFC 5322"):
        parse_file_date('creation:"yesterday"')
    with pytest.raises(FileAttributeError, match="a=file-date"):
        parse_file_date("creation:Mon")


def test_media_attributes_round_trip():
    media = FileTransferMedia(
        FileSelector(name="a b.txt", type="text/plain", size=2000, hash=FileHash.sha1(DIGEST)),
        transfer_id=new_transfer_id(), disposition="attachment",
        date=FileDate(modification=datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)),
        icon="cid:icon@example.com", range=FileRange(1001, None))
    names = [name for name, _ in media.attributes()]
    assert names == ["file-selector", "file-transfer-id", "file-disposition", "file-date",
                     "file-icon", "file-range"]
    again = FileTransferMedia.from_attributes(media.attributes() + [("accept-types", "*")])
    assert again == media
    assert len(new_transfer_id()) == 32 and new_transfer_id() != new_transfer_id()
    whole = FileTransferMedia(FileSelector(name="x"), range=FileRange())
    assert [name for name, _ in whole.attributes()] == ["file-selector"]


def test_media_is_strict_on_what_decides_and_lenient_on_decoration():
    base = [("file-selector", "name:\"x\" size:10")]
    media = FileTransferMedia.from_attributes(
        base + [("file-date", "creation:\"never\""), ("file-icon", "http://x/y.png"),
                ("file-disposition", "a b")])
    assert media.date is None and media.icon is None and media.disposition is None
    assert len(media.ignored) == 3
    for extra, words in ((("file-transfer-id", "a b"), "file-transfer-id"),
                         (("file-range", "5-11"), "passes the end"),
                         (("file-range", "x"), "file-range"),
                         (("file-selector", "name:\"y\""), "two")):
        with pytest.raises(FileAttributeError, match=words):
            FileTransferMedia.from_attributes(base + [extra])
    with pytest.raises(FileAttributeError, match="no a=file-selector"):
        FileTransferMedia.from_attributes([("path", "msrp://x")])
    assert FileTransferMedia.from_attributes([("file-selector", None)]).selector.empty


def test_rfc_5322_dates():
    from sipd.files.dates import format_date, parse_date

    when = datetime.datetime(2008, 11, 10, 10, 0, 5, tzinfo=datetime.UTC)
    assert format_date(when) == "Mon, 10 Nov 2008 10:00:05 +0000"
    assert format_date(when.replace(tzinfo=None)) == "Mon, 10 Nov 2008 10:00:05 +0000"
    assert parse_date(format_date(when)) == when
    assert parse_date("10 nov 08 11:00 +0100") == when.replace(second=0)
    assert parse_date("Mon, 10 Nov 2008 05:00:05 EST") == when
    for bad in ("yesterday", "10 Foo 2008 10:00 +0000", "32 Nov 2008 10:00 +0000"):
        with pytest.raises(ValueError):
            parse_date(bad)
