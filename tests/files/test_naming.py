"""Received names never leave the download folder and never take a name that is there."""

from __future__ import annotations

import itertools

import pytest

from sipd.files.naming import (
    FALLBACK_NAME,
    MAX_NAME_BYTES,
    candidate_names,
    inside,
    part_name,
    safe_name,
)


@pytest.mark.parametrize("received, expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\system.ini", "system.ini"),
    ("/etc/shadow", "shadow"),
    ("C:\\boot.ini", "boot.ini"),
    ("C:boot.ini", "C_boot.ini"),
    ("a\x00b.txt", "ab.txt"),
    ("line\nbreak\r\t.txt", "linebreak.txt"),
    ("bell\x07\x7f\x9b.txt", "bell.txt"),
    ("photo\u202egpj.exe", "photogpj.exe"),
    ("what?<>|*\".txt", "what______.txt"),
    (".bashrc", "bashrc"),
    ("..", FALLBACK_NAME),
    ("...", FALLBACK_NAME),
    ("", FALLBACK_NAME),
    (None, FALLBACK_NAME),
    ("dir/", FALLBACK_NAME),
    ("   ", FALLBACK_NAME),
    ("trailing. . ", "trailing"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("Com1.tar.gz", "_Com1.tar.gz"),
    ("lpt9", "_lpt9"),
    ("CONSOLE.txt", "CONSOLE.txt"),
    ("café.txt", "café.txt"),
])
def test_safe_name(received, expected):
    assert safe_name(received) == expected


def test_long_names_are_cut_on_characters_keeping_the_extension():
    name = safe_name("é" * 300 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= MAX_NAME_BYTES
    assert set(name[:-5]) == {"é"}
    odd = safe_name("x" * 300 + "." + "y" * 40)  # an extension too long to keep
    assert len(odd.encode()) <= MAX_NAME_BYTES
    worst = part_name(list(itertools.islice(candidate_names(name), 10000))[-1])
    assert len(worst.encode()) <= 255


def test_candidates_number_before_the_extension():
    assert list(itertools.islice(candidate_names("a.tar.gz"), 3)) == [
        "a.tar.gz", "a.tar (1).gz", "a.tar (2).gz"]
    assert list(itertools.islice(candidate_names("README"), 2)) == ["README", "README (1)"]
    assert part_name("a.txt") == "a.txt.part"


def test_inside_refuses_anything_but_a_plain_name(tmp_path):
    folder = str(tmp_path)
    assert inside(folder, "a.txt") == f"{folder}/a.txt"
    for bad in ("", ".", "..", "../a", "a/b", "/etc/passwd", "a\0b"):
        with pytest.raises(ValueError):
            inside(folder, bad)
