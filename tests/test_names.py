"""Names and text: docs/protocol.md, Names and Limits."""

from __future__ import annotations

import sys
import unicodedata

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from chatd.line.wire import LIST_VERBS, SERVER_VERBS
from chatd.model.names import (
    VERB_NICKS,
    clean_text,
    fold,
    guest_name,
    nick_problem,
    valid_nick,
    valid_room,
)


@pytest.mark.parametrize(
    "nick",
    [
        "alice",
        "a",
        "A_b-c",
        "x" * 20,
        "Zoë",
        "Élodie",
        "δημήτρης",
        "Юлия",
        "花子",
        "हिन्दी",
        "user42",
        "_under",
    ],
)
def test_valid_nicknames_are_accepted(nick: str) -> None:
    """Letters of any script, digits, _ and -, 1 to 20 characters."""
    assert valid_nick(nick)


@pytest.mark.parametrize(
    "nick",
    [
        "",
        "x" * 21,
        "1abc",
        "-abc",
        "a b",
        "a.b",
        "a!",
        "#room",
        "a\tb",
        "a\x1bb",
        "\u0301a",
        "bob\u200b",
        "alice\u034f",  # combining grapheme joiner: invisible
        "alice\u180b",  # Mongolian free variation selector: invisible
        "alice\ufe0f",  # variation selector-16: invisible
        "ali\u0300\u0301\u0302ce",  # three stacked marks
    ],
)
def test_invalid_nicknames_are_refused(nick: str) -> None:
    """Empty, too long, leading digit or '-', spaces, punctuation, controls,
    a leading mark, invisible marks and stacks of marks."""
    assert not valid_nick(nick)


@pytest.mark.parametrize(
    "nick",
    [
        "\u3164",  # HANGUL FILLER: a letter that draws nothing, a blank name
        "\u115f\u1160",  # HANGUL CHOSEONG and JUNGSEONG FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "alice\u3164",  # passes for alice
        "ali\u1160ce",
        "alice\uffa0",
    ],
)
def test_hangul_fillers_are_refused_as_invisible(nick: str) -> None:
    """Letters that Unicode marks Default_Ignorable cannot make a blank-looking
    nickname or a second alice, and the refusal says which character it was."""
    problem = nick_problem(nick)
    assert problem is not None and "invisible" in problem and "U+" in problem


def test_no_default_ignorable_code_point_passes_in_a_name() -> None:
    """Each of the ~4,000 Default_Ignorable code points is refused, alone or
    after a letter, in nicknames and room names."""
    ignorable = regex.compile(r"\p{Default_Ignorable_Code_Point}")
    points = [chr(c) for c in range(sys.maxunicode + 1) if ignorable.match(chr(c))]
    assert len(points) > 4000
    for ch in points:
        for name in (ch, f"a{ch}", f"a{ch}b"):
            assert not valid_nick(name), f"U+{ord(ch):04X}"
            assert not valid_room(f"#{name}"), f"U+{ord(ch):04X}"


def test_every_verb_in_capitals_is_a_reserved_nickname() -> None:
    """No nickname may be spelled as a server verb is (wire.py's table: v2's
    HISTORY and ENDHISTORY, chatd's ID): "PRIV INFO you ..." would read as a
    notice. The same words in small letters are ordinary names ("nick" is a
    common one)."""
    verbs = {*SERVER_VERBS, *LIST_VERBS, "HISTORY", "ENDHISTORY"}
    assert verbs <= VERB_NICKS
    assert not any(valid_nick(verb) for verb in verbs)
    assert valid_nick("nick") and valid_nick("Info") and not valid_nick("server")
    assert valid_nick("informed") and valid_nick("servers")


def test_fold_ignores_case_and_compatibility_forms() -> None:
    """NFKC then casefold: fullwidth, ligatures and ß compare equal to plain forms."""
    assert fold("Alice") == fold("ALICE") == fold("ａｌｉｃｅ")
    assert fold("Straße") == fold("STRASSE")
    assert fold("ﬁsh") == fold("fish")


@pytest.mark.parametrize(
    "room", ["#lobby", "#a", "#" + "r" * 32, "#2026", "#-x", "#Café"]
)
def test_valid_rooms_are_accepted(room: str) -> None:
    """A # and 1 to 32 characters of the nickname alphabet."""
    assert valid_room(room)


@pytest.mark.parametrize("room", ["lobby", "#", "#" + "r" * 33, "##x", "#a b", "#a,b"])
def test_invalid_rooms_are_refused(room: str) -> None:
    """No #, nothing after it, too long, or characters outside the alphabet."""
    assert not valid_room(room)


def test_clean_text_strips_c0_del_and_c1_but_keeps_tab() -> None:
    """Control characters never reach another client; TAB and other text survive."""
    assert clean_text("a\x00b\x07c\x1b[31md\x7fe\x85f\x9bg\th") == "abc[31mdefg\th"
    assert clean_text("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓"
    assert clean_text("\r\n") == ""


BIDI_CONTROLS = [
    *("\u202a", "\u202b", "\u202c", "\u202d", "\u202e"),  # embeddings, overrides
    *("\u2066", "\u2067", "\u2068", "\u2069"),  # isolates
    *("\u200e", "\u200f", "\u061c"),  # LRM, RLM, ALM
]


@pytest.mark.parametrize("control", [*BIDI_CONTROLS, "\u2028", "\u2029"])
def test_clean_text_strips_bidi_controls_and_line_separators(control: str) -> None:
    """A right-to-left override cannot turn what a message shows around, and a
    LINE or PARAGRAPH SEPARATOR cannot split one MSG into two lines for a
    client that splits with str.splitlines()."""
    assert clean_text(f"see {control}txt.exe{control}") == "see txt.exe"
    assert clean_text(f"hi{control}MSG #lobby bob forged").splitlines() == [
        "hiMSG #lobby bob forged"
    ]


def test_clean_text_keeps_the_format_characters_emoji_and_scripts_need() -> None:
    """ZWJ sequences, variation selectors, tag sequences and ZWNJ survive."""
    kept = [
        "\U0001f469\u200d\U0001f4bb",  # woman technologist: ZWJ
        "\u2764\ufe0f",  # red heart: variation selector-16
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ
        "\u05e9\u05dc\u05d5\u05dd and \u0645\u0631\u062d\u0628\u0627",  # RTL text
    ]
    for text in kept:
        assert clean_text(text) == text


def test_guest_name_draws_until_one_is_free() -> None:
    tried: list[str] = []

    def taken(name: str) -> bool:
        tried.append(name)
        return len(tried) < 3

    name = guest_name(taken)
    assert name == tried[-1] and len(tried) == 3
    assert name.startswith("Guest") and name[5:].isdecimal() and len(name) == 10


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_fold_of_ascii_is_the_unicode_fold(name: str) -> None:
    """fold's ASCII shortcut (lower) gives what NFKC then casefold give."""
    assert fold(name) == unicodedata.normalize("NFKC", name).casefold()
