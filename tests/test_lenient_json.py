"""The lenient JSON dialect of layouts.md §2 (KijiSchema's Jackson 1.x settings)."""

from __future__ import annotations

import json

import pytest

from kijirest.lenient_json import LenientJSONError, loads


def test_standard_json_is_read_as_json() -> None:
    text = '{"a": [1, -2, 3.5, -1e3, 2E+2, true, false, null, "x\\"y\\\\z\\/\\b\\f\\n\\r\\t"], "b": {}}'
    assert loads(text) == json.loads(text)


def test_comments_anywhere_whitespace_may_stand() -> None:
    text = """/* header */ { // line comment
      "a" /* before colon */ : /* after */ 1, // trailing
      /* multi
         line */ "b": [ /* x */ 2 /* y */ ] } // end
    /* trailer */"""
    assert loads(text) == {"a": 1, "b": [2]}


def test_comment_ending_at_end_of_input_and_at_cr() -> None:
    assert loads("[1] // no newline") == [1]
    assert loads("[1, // c\r2]") == [1, 2]


def test_single_quoted_strings_and_escapes() -> None:
    assert loads("'it\\'s'") == "it's"
    assert loads("'say \"hi\"'") == 'say "hi"'
    assert loads("'\\n\\t\\u0041\\\\'") == "\n\tA\\"
    # \' is accepted in double-quoted strings too (Jackson, with single quotes enabled)
    assert loads('"it\\\'s"') == "it's"


def test_unquoted_field_names() -> None:
    value = loads("{name: 'users', $x_1: 2, _y: 3, true: 4}")
    assert value == {"name": "users", "$x_1": 2, "_y": 3, "true": 4}


def test_layout_like_example() -> None:
    text = """
    {
      name: 'users',
      keys_format: {encoding: 'FORMATTED', salt: {hash_size: 2}, // comment
        components: [{name: 'org', type: 'STRING'}]},
      value: '["null", "string"]'
    }"""
    assert loads(text) == {
        "name": "users",
        "keys_format": {"encoding": "FORMATTED", "salt": {"hash_size": 2}, "components": [
            {"name": "org", "type": "STRING"}]},
        "value": '["null", "string"]',
    }


def test_entity_id_forms() -> None:
    assert loads("['a','b']") == ["a", "b"]
    assert loads('["acme", []]') == ["acme", []]
    assert loads("[1, -9223372036854775808]") == [1, -9223372036854775808]


def test_numbers_int_vs_float() -> None:
    big = 2**200
    assert loads(str(big)) == big and isinstance(loads(str(big)), int)
    assert isinstance(loads("1"), int)
    assert isinstance(loads("1.0"), float)
    assert isinstance(loads("1e2"), float)
    assert loads("-0") == 0
    assert loads("0.5") == 0.5
    assert loads("[1e400, -1e400]") == [float("inf"), float("-inf")]  # as Java's Double.parseDouble


def test_unicode_escapes_and_surrogate_pairs() -> None:
    assert loads('"\\u00e9\\ud83d\\ude00"') == "é\U0001f600"
    assert loads('"é literal ✓"') == "é literal ✓"


def test_repeated_keys_keep_first_position_last_value() -> None:
    value = loads("{a: 1, b: 2, a: 3}")
    assert value == {"a": 3, "b": 2}
    assert list(value) == ["a", "b"]


def test_scalars_at_top_level() -> None:
    assert loads(" 42 ") == 42
    assert loads("null") is None
    assert loads("'x'") == "x"


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("[1, 2,]", 1, 7, "trailing comma"),
        ("{a: 1,\n}", 2, 1, "trailing comma"),
        ("[NaN]", 1, 2, "NaN"),
        ("[-Infinity]", 1, 2, "Infinity"),
        ("Infinity", 1, 1, "Infinity"),
        ("0x1F", 1, 1, "hex"),
        ("01", 1, 1, "leading zero"),
        ("1.", 1, 2, "decimal point"),
        (".5", 1, 1, "number"),
        ("+1", 1, 1, "number"),
        ("1e", 1, 2, "exponent"),
        ('"a\tb"', 1, 3, "control character U+0009"),
        ("'a\nb'", 1, 3, "control character U+000A"),
        ("{} {}", 1, 4, "after the top-level value"),
        ("[1] ]", 1, 5, "after the top-level value"),
        ("", 1, 1, "end of input"),
        ("[1, 2", 1, 6, "end of input"),
        ('"abc', 1, 5, "unterminated string"),
        ("/* open", 1, 1, "unterminated /* comment"),
        ("[1 / 2]", 1, 4, "'/'"),
        ('"\\q"', 1, 2, "invalid escape"),
        ('"\\u12G4"', 1, 2, "4 hex digits"),
        ('"\\ud83d"', 1, 2, "surrogate"),
        ("{1: 2}", 1, 2, "field name"),
        ("{a-b: 2}", 1, 3, "':'"),
        ("{a 1}", 1, 4, "':'"),
        ("[abc]", 1, 2, "strings need quotes"),
        ("[1 2]", 1, 4, "expected ',' or ']'"),
        ("{a: 1 b: 2}", 1, 7, "expected ',' or '}'"),
        ("[True]", 1, 2, "expected a value"),
        ("\u00a0[]", 1, 1, "expected a value"),
        ("[\x0b]", 1, 2, "U+000B"),
        ("[1]\r\n\r\n  x", 3, 3, "after the top-level value"),
        ("[1,\r2,\rx]", 3, 1, "expected a value"),
        ("[12abc]", 1, 4, "in number"),
    ],
)
def test_errors_name_line_and_column(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(LenientJSONError) as info:
        loads(text)
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err).startswith(f"line {line}, column {column}: ")
    assert fragment in str(err)


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        loads("[,]")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(LenientJSONError, match="nesting too deep"):
        loads("[" * 5000 + "]" * 5000)
    assert loads("[" * 50 + "]" * 50) == eval("[" * 50 + "]" * 50)


def test_avro_dialect_is_json_plus_comments_only() -> None:
    assert loads('/* c */ {"type": "string"} // end', lenient=False) == {"type": "string"}
    with pytest.raises(LenientJSONError, match="column 10: unexpected character \"'\""):
        loads("{\"type\": 'string'}", lenient=False)
    with pytest.raises(LenientJSONError, match=r"column 2: .*expected a field name"):
        loads('{type: "string"}', lenient=False)
