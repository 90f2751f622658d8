"""Entity IDs: every vector and rule of encodings.md §1, seen from what a client sends and gets back."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from kijirest.entity_id import (
    EntityIdError,
    RowKey,
    Wildcard,
    codec_for,
    decode_row_key,
    encode_components,
    entity_id_from_json,
    entity_id_json,
    from_string_binary,
    is_empty_range,
    java_url_encode,
    parse_bound,
    parse_entity_id,
    parse_entity_id_list,
    parse_hex,
    target_eid_text,
    to_string_binary,
)
from kijirest.layouts.model import KeyComponent, RowKeySpec
from kijirest.primitives import successor
from kijirest.store.semantics import compile_row_regex


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def formatted(
    *types: str,
    hash_size: int = 2,
    range_scan_start: int = 1,
    nullable_start: int = 1,
    suppress: bool = False,
):
    comps = tuple(KeyComponent(f"c{i}", t) for i, t in enumerate(types))
    return RowKeySpec("FORMATTED", hash_size, suppress, comps, range_scan_start, nullable_start)


RAW = RowKeySpec("RAW")
HASH = RowKeySpec("HASH", 16)
DOC = formatted("STRING", "STRING", "STRING", "INTEGER", "LONG")
DOC_HEX = "3f0b636f6d706f6e656e743100636f6d706f6e656e743200636f6d706f6e656e7433008000007b8000000000000141"
DOC_TEXT = r"?\x0Bcomponent1\x00component2\x00component3\x00\x80\x00\x00{\x80\x00\x00\x00\x00\x00\x01A"
DOC_EID = ["component1", "component2", "component3", 123, 321]


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(EntityIdError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --- §1.11 vectors ---------------------------------------------------------------------------------


def test_documentation_vector_key_bytes_and_text():
    key = encode_components(DOC_EID, DOC)
    assert key.hex() == DOC_HEX
    assert key[:2] == md5(b"component1")[:2] == bytes.fromhex("3f0b")
    assert to_string_binary(key) == DOC_TEXT
    assert from_string_binary(DOC_TEXT) == key


def test_documentation_vector_in_every_input_form_and_back():
    key = bytes.fromhex(DOC_HEX)
    for text in (
        '["component1","component2","component3",123,321]',
        "['component1', 'component2', 'component3', 123, 321]",
        "hbase=" + DOC_TEXT,
        "hbase_hex=" + DOC_HEX,
        "hbase_hex=" + DOC_HEX.upper(),
    ):
        parsed = parse_entity_id(text, DOC, wildcard=True)
        assert isinstance(parsed, RowKey)
        assert parsed.key == key
    assert entity_id_json(key, DOC) == DOC_EID
    assert decode_row_key(key, DOC) == DOC_EID


def test_long_vector():
    keys = formatted("LONG")
    assert encode_components([1298404763], keys).hex() == "9ee9800000004d64159b"
    assert entity_id_json(bytes.fromhex("9ee9800000004d64159b"), keys) == [1298404763]


INTEGER_FLIPS = [
    (-2147483648, "00000000"),
    (-1, "7fffffff"),
    (0, "80000000"),
    (1, "80000001"),
    (2147483647, "ffffffff"),
]
LONG_FLIPS = [
    (-9223372036854775808, "0000000000000000"),
    (-1, "7fffffffffffffff"),
    (0, "8000000000000000"),
    (321, "8000000000000141"),
    (9223372036854775807, "ffffffffffffffff"),
]


@pytest.mark.parametrize(
    ("kind", "value", "hexed"), [("INTEGER", *v) for v in INTEGER_FLIPS] + [("LONG", *v) for v in LONG_FLIPS]
)
def test_sign_flip_tables(kind, value, hexed):
    keys = formatted(kind, hash_size=1)
    raw = bytes.fromhex(hexed)
    key = encode_components([value], keys)
    assert key == md5(raw)[:1] + raw
    assert entity_id_json(key, keys) == [value]


def test_sign_flip_sorts_numerically():
    for kind, table in (("INTEGER", INTEGER_FLIPS), ("LONG", LONG_FLIPS)):
        keys = formatted("STRING", kind)
        encoded = [encode_components(["same", v], keys) for v, _ in table]
        assert encoded == sorted(encoded)


# --- §1.4 input checks -----------------------------------------------------------------------------

S3 = formatted("STRING", "STRING", "STRING", nullable_start=2)
MIXED = formatted("STRING", "INTEGER", "LONG")


@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [
        (S3, ["a", "b", "c", "d"], "Too many components in kiji Row Key"),
        (S3, ["a"], "Too few components in kiji Row key"),
        (S3, [], "Too few components in kiji Row key"),
        (
            S3,
            ["a", None, "c"],
            "Unexpected null component in kiji row key. Expected at least 2 non-null components",
        ),
        (
            formatted("STRING", "STRING", "STRING"),
            ["a", None, "c"],
            "Non null component follows null component",
        ),
        (MIXED, ["a", "1"], "Invalid type for component c1 at index 1"),
        (MIXED, [1], "Invalid type for component c0 at index 0"),
        (MIXED, ["a", 1.0], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", True], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", 1, False], "Invalid type for component c2 at index 2"),
        (MIXED, ["a", {"int": 1}], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", [1]], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", 2**31], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", -(2**31) - 1], "Invalid type for component c1 at index 1"),
        (MIXED, ["a", 1, 2**63], "Invalid type for component c2 at index 2"),
        (MIXED, ["a", 1, -(2**63) - 1], "Invalid type for component c2 at index 2"),
        (MIXED, ["a", 1, 1e3], "Invalid type for component c2 at index 2"),
        (MIXED, ["a\x00b"], "String component cannot contain \\u0000"),
        # two rules apply: the first one in the order of §1.4 wins
        (MIXED, ["a", 1.5, 1, 2], "Too many components in kiji Row Key"),
        (
            formatted("STRING", "STRING", "STRING", nullable_start=3),
            ["a", None],
            "Too few components in kiji Row key",
        ),
        (
            formatted("STRING", "STRING", "STRING"),
            ["a", None, 5],
            "Non null component follows null component",
        ),
        (
            S3,
            [None, 1.5],
            "Unexpected null component in kiji row key. Expected at least 2 non-null components",
        ),
        (formatted("STRING", "STRING"), ["a\x00", 1.5], "Invalid type for component c1 at index 1"),
        (
            formatted("STRING", "STRING", "STRING"),
            ["a\x00", None, "b"],
            "Non null component follows null component",
        ),
    ],
)
def test_input_checks_in_order(keys, values, message):
    assert error_of(encode_components, values, keys) == message


def test_explicit_trailing_null_is_a_left_out_component():
    keys = formatted("STRING", "STRING", "STRING")
    assert encode_components(["a", "b", None], keys) == encode_components(["a", "b"], keys)
    assert encode_components(["a", None, None], keys) == md5(b"a")[:2] + b"a\x00"


def test_integer_and_long_ranges_accept_their_limits():
    keys = formatted("STRING", "INTEGER", "LONG")
    for i, j in itertools.product((-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)):
        assert entity_id_json(encode_components(["a", i, j], keys), keys) == ["a", i, j]


def test_lone_surrogate_is_rejected():
    assert "not valid Unicode" in error_of(encode_components, ["\ud800"], formatted("STRING"))
    assert "not valid Unicode" in error_of(encode_components, ["\ud800"], RAW)


def test_string_bytes_and_empty_string():
    keys = formatted("STRING", "STRING")
    assert encode_components(["é", ""], keys) == md5("é".encode())[:2] + "é".encode() + b"\x00\x00"
    assert entity_id_json(encode_components(["é", ""], keys), keys) == ["é", ""]


# --- salt, hash, suppression -----------------------------------------------------------------------


@pytest.mark.parametrize("hash_size", [1, 2, 16])
def test_hash_size_comes_from_the_spec(hash_size):
    keys = formatted("STRING", hash_size=hash_size)
    assert encode_components(["x"], keys) == md5(b"x")[:hash_size] + b"x\x00"


def test_hash_covers_components_below_rssi_without_terminators():
    keys = formatted("STRING", "STRING", "STRING", hash_size=4, range_scan_start=2)
    ab_c = encode_components(["ab", "c", "z"], keys)
    a_bc = encode_components(["a", "bc", "z"], keys)
    assert ab_c[:4] == a_bc[:4] == md5(b"abc")[:4]
    assert ab_c[4:] == b"ab\x00c\x00z\x00"
    assert a_bc[4:] == b"a\x00bc\x00z\x00"
    assert entity_id_json(ab_c, keys) == ["ab", "c", "z"]
    assert entity_id_json(a_bc, keys) == ["a", "bc", "z"]


def test_numbers_are_hashed_with_their_flipped_bytes():
    keys = formatted("STRING", "INTEGER", "STRING", hash_size=3, range_scan_start=2)
    key = encode_components(["a", 5, "b"], keys)
    assert key == md5(b"a" + bytes.fromhex("80000005"))[:3] + b"a\x00" + bytes.fromhex("80000005") + b"b\x00"


def test_nulls_inside_the_hashed_range_are_left_out():
    keys = formatted("STRING", "STRING", range_scan_start=2)
    assert encode_components(["a"], keys) == encode_components(["a", None], keys)
    assert encode_components(["a"], keys) == md5(b"a")[:2] + b"a\x00"
    assert entity_id_json(md5(b"a")[:2] + b"a\x00", keys) == ["a", None]


SUPPRESSED = formatted("STRING", "INTEGER", hash_size=16, range_scan_start=2, nullable_start=2, suppress=True)


def test_suppressed_key_is_the_hash_only():
    key = encode_components(["a", 5], SUPPRESSED)
    assert key == md5(b"a" + bytes.fromhex("80000005"))
    assert decode_row_key(key, SUPPRESSED) is None
    assert entity_id_json(key, SUPPRESSED) == "hbase=" + to_string_binary(key)


def test_suppressed_decoding_rules():
    # shorter than hash_size: accepted (no components); longer: extra bytes
    assert decode_row_key(b"abc", SUPPRESSED) is None
    too_long = bytes(17)
    assert error_of(decode_row_key, too_long, SUPPRESSED) == (
        "Extra bytes in key after hash when materialization is suppressed"
    )
    assert entity_id_json(too_long, SUPPRESSED) == "hbase=" + "\\x00" * 17
    assert entity_id_from_json("hbase=abc", SUPPRESSED, for_write=True).key == b"abc"
    with pytest.raises(EntityIdError, match="Extra bytes in key after hash"):
        entity_id_from_json("hbase_hex=" + "00" * 17, SUPPRESSED, for_write=True)
    assert entity_id_from_json("hbase_hex=" + "00" * 17, SUPPRESSED, for_write=False).key == too_long


# --- §1.6 decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "key", "message"),
    [
        (MIXED, b"", "Invalid hbase row key"),
        (MIXED, b"HHa\x00\x80\x00\x00", "Malformed hbase Row Key"),
        (MIXED, b"HHa\x00\x80\x00\x00\x01\x80\x00", "Malformed hbase Row Key"),
        (
            formatted("INTEGER"),
            b"HH\x80\x00\x00\x01\x00",
            "Extra bytes in hbase row key cannot be mapped to any component",
        ),
        (formatted("STRING"), b"HHa\x00b", "Extra bytes in hbase row key cannot be mapped to any component"),
        (MIXED, b"HH", "Too few components decoded from hbase row key"),
        (MIXED, b"H", "Too few components decoded from hbase row key"),
        (
            formatted("STRING", "STRING", nullable_start=2),
            b"HHa\x00",
            "Too few components decoded from hbase row key",
        ),
    ],
)
def test_undecodable_keys(keys, key, message):
    assert error_of(decode_row_key, key, keys) == message
    # a row read from the store is still shown, as its raw key
    assert entity_id_json(key, keys) == "hbase=" + to_string_binary(key)


def test_decoding_leniencies():
    keys = formatted("STRING", "STRING", "INTEGER")
    # the hash is not verified; an unterminated last string is accepted; missing components are null
    assert entity_id_json(b"zzab", keys) == ["ab", None, None]
    assert entity_id_json(b"zza\x00b", keys) == ["a", "b", None]
    assert entity_id_json(b"zza\x00\x00", keys) == ["a", "", None]
    # malformed UTF-8 becomes U+FFFD
    assert entity_id_json(b"zz\xffa\x00", keys) == ["\ufffda", None, None]


def test_post_refuses_raw_keys_a_formatted_table_cannot_decode():
    with pytest.raises(EntityIdError, match="Malformed hbase Row Key"):
        entity_id_from_json("hbase=HHa\\x00\\x80", MIXED, for_write=True)
    # GET / DELETE take any raw key
    assert entity_id_from_json("hbase=HHa\\x00\\x80", MIXED, for_write=False).key == b"HHa\x00\x80"
    assert parse_entity_id("hbase=HHa\\x00\\x80", MIXED).key == b"HHa\x00\x80"
    # on RAW anything goes
    assert entity_id_from_json("hbase=\\x80", RAW, for_write=True).key == b"\x80"


# --- the single-string formats ---------------------------------------------------------------------


def test_raw():
    assert encode_components(["héllo"], RAW) == "héllo".encode()
    assert encode_components(["a", None], RAW) == b"a"  # explicit trailing null
    assert entity_id_json(b"a\\b\n", RAW) == "hbase=a\\x5Cb\\x0A"
    assert decode_row_key(b"abc", RAW) is None
    for bad in (["a", "b"], [], [None], [1], [["a"]], [[]], [None, "a"]):
        assert error_of(encode_components, bad, RAW) == "A RAW row key takes exactly one string component"
    assert error_of(encode_components, [""], RAW) == "An HBase row key cannot be empty"


def test_hash():
    assert encode_components(["abc"], HASH) == md5(b"abc")
    assert encode_components([""], HASH) == md5(b"")
    key = md5(b"abc")
    assert entity_id_json(key, HASH) == "hbase=" + to_string_binary(key)
    assert (
        error_of(encode_components, ["a", "b"], HASH) == "A HASH row key takes exactly one string component"
    )


@pytest.mark.parametrize("hash_size", [0, 3, 16])
def test_hash_prefix(hash_size):
    keys = RowKeySpec("HASH_PREFIX", hash_size)
    key = encode_components(["héllo"], keys)
    assert key == md5("héllo".encode())[:hash_size] + "héllo".encode()
    assert entity_id_json(key, keys) == ["héllo"]
    # the prefix is not checked; malformed UTF-8 becomes U+FFFD
    assert entity_id_json(b"\x00" * hash_size + b"a\xffb", keys) == ["a\ufffdb"]
    assert (
        error_of(encode_components, [5], keys) == "A HASH_PREFIX row key takes exactly one string component"
    )


def test_hash_prefix_short_key_is_shown_raw():
    keys = RowKeySpec("HASH_PREFIX", 16)
    assert entity_id_json(b"\x01" * 15, keys) == "hbase=" + "\\x01" * 15
    assert entity_id_json(b"\x01" * 16, keys) == [""]
    with pytest.raises(EntityIdError):
        decode_row_key(b"\x01" * 15, keys)


# --- §1.8 hbase= text and hbase_hex= ---------------------------------------------------------------


def test_to_string_binary_every_byte():
    text = to_string_binary(bytes(range(256)))
    expected = "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02X}" for b in range(256))
    assert text == expected
    assert "\\x5C" in text and "\\x7F" in text and "\\x0A" in text and "\\xFF" in text
    assert from_string_binary(text) == bytes(range(256))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("abc", b"abc"),
        ("\\x0B", b"\x0b"),
        ("\\x0b", b"x0b"),  # lowercase hex: the backslash is dropped, reading goes on at the x
        ("\\xAb", b"xAb"),
        ("\\xZZ", b"xZZ"),
        ("a\\nb", b"a\\nb"),  # backslash not followed by x is itself
        ("a\\", b"a\\"),  # final backslash
        ("\\\\x41", b"\\A"),
        ("é\u00ff", b"\xe9\xff"),  # characters up to U+00FF are one byte each
        (" +", b" +"),
    ],
)
def test_from_string_binary_rules(text, key):
    assert from_string_binary(text) == key


@pytest.mark.parametrize("text", ["\\x", "\\x0", "ab\\xA", "€", "a\\x00\u0100"])
def test_from_string_binary_errors(text):
    with pytest.raises(EntityIdError):
        from_string_binary(text)
    with pytest.raises(EntityIdError):
        parse_entity_id("hbase=" + text, RAW)


def test_hbase_hex():
    assert parse_hex("00aBcD") == b"\x00\xab\xcd"
    for bad in ("", "0", "abc", "0g", "00 11", " 0011", "0x11"):
        with pytest.raises(EntityIdError):
            parse_hex(bad)
    assert parse_entity_id("hbase_hex=6162", RAW).key == b"ab"


def test_empty_raw_key_is_refused():
    for text in ("hbase=", "hbase_hex="):
        with pytest.raises(EntityIdError):
            parse_entity_id(text, RAW)


def test_malformed_parameter_text():
    assert "JSON" in error_of(parse_entity_id, "[abc", RAW)
    assert error_of(parse_entity_id, '"abc"', RAW).startswith("An entity ID must be")
    assert error_of(parse_entity_id, "{}", DOC).startswith("An entity ID must be")
    assert error_of(parse_entity_id, "HBASE=abc", RAW)  # the prefixes are case-sensitive


# --- §1.9 wildcards --------------------------------------------------------------------------------

WILD = formatted("STRING", "INTEGER", "LONG", "STRING")


def test_wildcard_regex_for_a_mixed_layout_with_known_hash():
    w = parse_entity_id('["a.b*", [], 5]', WILD, wildcard=True)
    assert isinstance(w, Wildcard)
    h = md5(b"a.b*")[:2]
    hx = "".join(f"\\x{b:02x}" for b in h)
    assert w.regex == (
        "(?s)^" + hx + "a\\x2eb\\x2a\\x00" + "(.{4})?"
        "\\x80\\x00\\x00\\x00\\x00\\x00\\x00\\x05" + "([^\\x00]*\\x00)?" + "\\z"
    )
    assert w.regex.isascii()
    assert w.hash == h
    assert w.start == h + b"a.b*\x00"
    assert w.stop == h + b"a.b*\x01"


def test_wildcard_regex_with_unknown_hash_scans_the_whole_table():
    w = parse_entity_id("[[], 7]", WILD, wildcard=True)
    assert w.regex == "(?s)^.{2}([^\\x00]*\\x00)?\\x80\\x00\\x00\\x07(.{8})?([^\\x00]*\\x00)?\\z"
    assert (w.start, w.stop, w.hash) == (b"", None, None)


def test_missing_components_are_wildcards_only_with_a_wildcard():
    w = parse_entity_id('["k", []]', WILD, wildcard=True)
    assert w.regex.endswith("(.{4})?(.{8})?([^\\x00]*\\x00)?\\z")
    point = parse_entity_id('["k"]', WILD, wildcard=True)
    assert isinstance(point, RowKey)
    assert point.key == md5(b"k")[:2] + b"k\x00"


def test_wildcard_stop_is_the_successor_of_the_prefix():
    keys = formatted("INTEGER", "STRING", hash_size=1)
    w = parse_entity_id(f"[{2**31 - 1}, []]", keys, wildcard=True)
    h = md5(b"\xff\xff\xff\xff")[:1]
    assert w.start == h + b"\xff\xff\xff\xff"
    assert w.stop == (bytes([h[0] + 1]) if h != b"\xff" else None)


def _regex_accepts(w: Wildcard, key: bytes) -> bool:
    """The row regex as the memory and embedded stores apply it (HBase applies the same Java regex)."""
    regex = compile_row_regex(w.regex)
    assert regex is not None
    return regex.fullmatch(key.decode("latin-1")) is not None


def test_regex_and_matches_agree_on_encoded_keys():
    strings = ["", "a", "a.b", ".*", "x\ny", "\n", "(", "k", "é", "ab", "\\", "$"]
    numbers = [0, 10, -1, 0x0A0A0A0A - 2**31, 2**31 - 1]
    longs = [0, 10, 0x0A00000000000A00 - 2**63]
    rows = []
    for s0 in ["k", "a.b", ""]:
        rows.append([s0])
        for n in numbers:
            rows.append([s0, n])
            for lg in longs:
                rows.append([s0, n, lg])
                for s3 in strings:
                    rows.append([s0, n, lg, s3])
    patterns = [
        ('["k", []]', lambda r: r[0] == "k"),
        ('["k", [], 10]', lambda r: r[0] == "k" and len(r) > 2 and r[2] == 10),
        ("[[], 10]", lambda r: len(r) > 1 and r[1] == 10),
        ("[[], [], [], '.*']", lambda r: len(r) > 3 and r[3] == ".*"),
        ("[[], [], [], '']", lambda r: len(r) > 3 and r[3] == ""),
        ("[[], [], [], '\\n']", lambda r: len(r) > 3 and r[3] == "\n"),
        ('["a.b", -1, [], "$"]', lambda r: r[0] == "a.b" and r[1:2] == [-1] and r[3:] == ["$"]),
        ('["", [], 0]', lambda r: r[0] == "" and r[2:3] == [0]),
        ("[[]]", lambda r: True),
    ]
    false_positives = 0
    for text, expect in patterns:
        w = parse_entity_id(text, WILD, wildcard=True)
        hits = 0
        for row in rows:
            key = encode_components(row, WILD)
            want = expect(row)
            assert w.matches(key) is want, (text, row)
            if want:  # the store-side filter never loses a matching row
                assert _regex_accepts(w, key), (text, row)
            else:
                false_positives += _regex_accepts(w, key)
            if w.stop is not None and want:
                assert w.start <= key < w.stop
            hits += want
        assert hits > 0, text
    # the optional groups let the regex accept a few keys whose real components differ (§1.9 step 5)
    assert false_positives < len(rows) // 20


def test_regex_can_be_fooled_so_matches_rechecks():
    w = parse_entity_id('["a", [], 5]', WILD, wildcard=True)
    h = md5(b"a")[:2]
    # the INTEGER group skipped: the LONG's 8 bytes are read as INTEGER + 4 bytes of LONG by the decoder
    contrived = h + b"a\x00" + (5 + 2**63).to_bytes(8, "big")
    assert _regex_accepts(w, contrived)
    assert not w.matches(contrived)
    # even an ordinary key: [""] read as a skipped STRING group and a final empty string
    w_last = parse_entity_id("[[], [], [], '']", WILD, wildcard=True)
    assert _regex_accepts(w_last, encode_components([""], WILD))
    assert not w_last.matches(encode_components([""], WILD))
    assert w_last.matches(encode_components(["", 0, 0, ""], WILD))
    # a wrong hash with matching components: the regex and matches() both refuse
    assert not w.matches(b"zz" + contrived[2:])
    assert not _regex_accepts(w, b"zz" + contrived[2:])


def test_final_line_feed_is_not_ignored():
    w = parse_entity_id("[[], [], [], []]", WILD, wildcard=True)
    key = encode_components(["k", 1, 2, "s"], WILD)
    assert _regex_accepts(w, key) and w.matches(key)
    assert not _regex_accepts(w, key + b"\n")  # Kiji's `$` accepted this
    assert not w.matches(key + b"\n")


def test_binary_hash_bytes_are_escaped():
    # find a first component whose hash holds 0a or a regex metacharacter; the pattern stays exact
    for i in range(1000):
        s = f"v{i}"
        if set(md5(s.encode())[:2]) & set(b"\n.*+?()[]{}\\^$|"):
            break
    else:
        pytest.fail("no hash with a metacharacter found")
    w = parse_entity_id(f'["{s}", []]', WILD, wildcard=True)
    key = encode_components([s, 1], WILD)
    assert _regex_accepts(w, key) and w.matches(key)
    assert not _regex_accepts(w, b"\x00\x00" + key[2:])


def test_explicit_null_in_a_wildcard_requires_the_component_absent():
    w = parse_entity_id('["k", null, []]', WILD, wildcard=True)
    assert w.matches(encode_components(["k"], WILD))
    assert not w.matches(encode_components(["k", 1], WILD))


@pytest.mark.parametrize(
    ("keys", "text", "wildcard"),
    [
        (RAW, "[[]]", True),
        (HASH, "[[]]", True),
        (RowKeySpec("HASH_PREFIX", 2), "[[]]", True),
        (formatted("STRING", "STRING", hash_size=16, range_scan_start=2, suppress=True), '["a", []]', True),
        (WILD, '["a", []]', False),  # DELETE, and every other use without wildcards
    ],
)
def test_wildcards_are_refused_elsewhere(keys, text, wildcard):
    with pytest.raises(EntityIdError):
        parse_entity_id(text, keys, wildcard=wildcard)


def test_wildcards_are_refused_in_eids_bounds_and_bodies():
    with pytest.raises(EntityIdError) as info:
        parse_entity_id_list('[["k"], ["k", []]]', WILD)
    assert info.value.path == "[1]"
    with pytest.raises(EntityIdError):
        parse_bound('["k", []]', WILD)
    with pytest.raises(EntityIdError):
        entity_id_from_json(["k", []], WILD, for_write=True)


def test_wildcard_still_checks_types_and_count():
    assert error_of(parse_entity_id, '["a", [], 1.5]', WILD, wildcard=True) == (
        "Invalid type for component c2 at index 2"
    )
    assert error_of(parse_entity_id, '[[], 1, 2, "x", 3]', WILD, wildcard=True) == (
        "Too many components in kiji Row Key"
    )
    # no nullable_start rule for wildcard arrays: the missing components are wildcards
    nsi3 = formatted("STRING", "STRING", "STRING", nullable_start=3)
    assert isinstance(parse_entity_id('["a", []]', nsi3, wildcard=True), Wildcard)


# --- §1.10 ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"a\xfe\xff\xff", b"a\xff"),
        (b"\x00", b"\x01"),
        (b"\xff", None),
        (b"\xff\xff\xff", None),
        (b"", None),
    ],
)
def test_successor(prefix, expected):
    assert successor(prefix) == expected


def test_bounds_may_be_partial():
    keys = formatted("STRING", "STRING", "INTEGER", nullable_start=3)
    h = md5(b"x")[:2]
    assert parse_bound('["x"]', keys) == h + b"x\x00"
    assert parse_bound("['x', 'y']", keys) == h + b"x\x00y\x00"
    assert error_of(parse_bound, "[]", keys) == "Too few components in kiji Row key"
    assert error_of(parse_bound, "[null]", keys) == (
        "Unexpected null component in kiji row key. Expected at least 1 non-null components"
    )
    assert parse_bound("hbase=\\x00", keys) == b"\x00"
    assert parse_bound("hbase_hex=ff", keys) == b"\xff"
    # the same partial array is not a point entity ID (nullable_start 3)
    assert error_of(parse_entity_id, '["x"]', keys) == "Too few components in kiji Row key"


def test_bounds_sort_like_components():
    keys = formatted("STRING", "STRING", "INTEGER", nullable_start=1)
    ordered = [
        ["x"],
        ["x", ""],
        ["x", "", -5],
        ["x", "", 7],
        ["x", "a"],
        ["x", "a", -(2**31)],
        ["x", "a", -1],
        ["x", "a", 0],
        ["x", "a", 2**31 - 1],
        ["x", "a\x01"],
        ["x", "ab"],
        ["x", "z"],
        ["x", "é"],
        ["x", "€"],
        ["x", "😀"],
    ]
    encoded = [encode_components(v, keys) for v in ordered]
    assert sorted(encoded) == encoded
    assert sorted(reversed(encoded)) == encoded
    # end_eid=["x"] excludes every row of "x" with more components
    end = parse_bound('["x"]', keys)
    assert [k for k in encoded if k < end] == []
    # a scan [["x","a"], ["x","ab"]) holds exactly the rows between them
    start, stop = parse_bound('["x","a"]', keys), parse_bound('["x","ab"]', keys)
    inside = [v for v, k in zip(ordered, encoded, strict=True) if start <= k < stop]
    assert inside == ordered[4:10]


def test_empty_range():
    assert is_empty_range(b"b", b"a")
    assert is_empty_range(b"a", b"a")
    assert not is_empty_range(b"a", b"a\x00")
    assert not is_empty_range(None, b"a")
    assert not is_empty_range(b"a", None)


# --- eids, POST targets ----------------------------------------------------------------------------


def test_eids_list():
    rows = parse_entity_id_list("[['k', 1], \"hbase=ab\", \"hbase_hex=00\", ['k', 1]]", WILD)
    assert [r.key for r in rows] == [
        encode_components(["k", 1], WILD),
        b"ab",
        b"\x00",
        encode_components(["k", 1], WILD),
    ]
    assert parse_entity_id_list("[]", WILD) == []
    for text, path in (('[["k"], "k"]', "[1]"), ("[[1.5]]", "[0]"), ('[["k"], ["k", "x"]]', "[1]")):
        with pytest.raises(EntityIdError) as info:
            parse_entity_id_list(text, WILD)
        assert info.value.path == path
    with pytest.raises(EntityIdError):
        parse_entity_id_list('"hbase=ab"', WILD)


def test_post_entity_ids():
    assert entity_id_from_json(DOC_EID, DOC, for_write=True).key == bytes.fromhex(DOC_HEX)
    assert entity_id_from_json("hbase=" + DOC_TEXT, DOC, for_write=True).key == bytes.fromhex(DOC_HEX)
    for bad in ("abc", 5, {"a": 1}, None):
        with pytest.raises(EntityIdError):
            entity_id_from_json(bad, DOC, for_write=True)


def test_targets():
    assert java_url_encode(target_eid_text([54321])) == "%5B54321%5D"
    assert target_eid_text(["a b", 1, None]) == '["a b",1,null]'
    assert target_eid_text(["é"]) == '["é"]'
    assert java_url_encode(target_eid_text(["é"])) == "%5B%22%C3%A9%22%5D"
    assert target_eid_text("hbase=a\\x00") == "hbase=a\\x00"
    assert java_url_encode("hbase=a\\x00") == "hbase%3Da%5Cx00"
    assert java_url_encode("a b+c~d*e-f.g_h/") == "a+b%2Bc%7Ed*e-f.g_h%2F"
    assert java_url_encode("€") == "%E2%82%AC"


def test_codec_is_cached_per_spec():
    assert codec_for(formatted("STRING")) is codec_for(formatted("STRING"))
