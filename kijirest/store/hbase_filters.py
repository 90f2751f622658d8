"""HBase filters as serialized protobuf `Filter` messages, for Thrift 2's `filterBytes`.

Why not the filter language (`filterString`): its `regexstring:` comparator decodes row keys as
UTF-8 in HBase 2.6 (RegexStringComparator's default charset), so a byte >= 0x80 never matches `\\xhh`
and multi-byte sequences count as one character. A serialized RegexStringComparator carries its
charset, and ISO-8859-1 gives what the store contract says: one character per key byte. Binary
family, qualifier and prefix arguments also travel as plain bytes, with no quoting rules.

Message layouts and field numbers are those of HBase's Filter.proto / Comparator.proto / HBase.proto
(package hbase.pb, proto2): a Filter is {1: class name, 2: the filter's own serialized message};
HBase instantiates it by class name (`ProtobufUtil.toFilter`).
"""

from __future__ import annotations

from kijirest.primitives import encode_varint as _varint  # protobuf's varint is the same LEB128

_PKG = "org.apache.hadoop.hbase.filter."
_EQUAL = 2  # hbase.pb.CompareType.EQUAL
_MUST_PASS_ALL = 1  # hbase.pb.FilterList.Operator
_MUST_PASS_ONE = 2
_DOTALL = 0x20  # java.util.regex.Pattern.DOTALL, RegexStringComparator's default flags


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _filter(name: str, body: bytes) -> bytes:
    return _len_field(1, (_PKG + name).encode()) + _len_field(2, body)


def _comparator(name: str, body: bytes) -> bytes:
    return _len_field(1, (_PKG + name).encode()) + _len_field(2, body)


def _compare_equal(comparator: bytes) -> bytes:
    """CompareFilter {1: compare_op, 2: comparator}."""
    return _int_field(1, _EQUAL) + _len_field(2, comparator)


def _binary(value: bytes) -> bytes:
    """BinaryComparator {1: ByteArrayComparable {1: value}}."""
    return _comparator("BinaryComparator", _len_field(1, _len_field(1, value)))


def row_regex(pattern: str) -> bytes:
    """RowFilter(=, RegexStringComparator(pattern, DOTALL, ISO-8859-1)): `find()` on the key read
    one character per byte. The caller anchors the pattern."""
    comparator = _comparator(
        "RegexStringComparator",
        _len_field(1, pattern.encode("utf-8"))
        + _int_field(2, _DOTALL)
        + _len_field(3, b"ISO-8859-1")
        + _len_field(4, b"JAVA"),
    )
    return _filter("RowFilter", _len_field(1, _compare_equal(comparator)))


def family_is(family: bytes) -> bytes:
    return _filter("FamilyFilter", _len_field(1, _compare_equal(_binary(family))))


def qualifier_is(qualifier: bytes) -> bytes:
    return _filter("QualifierFilter", _len_field(1, _compare_equal(_binary(qualifier))))


def column_prefix(prefix: bytes) -> bytes:
    return _filter("ColumnPrefixFilter", _len_field(1, prefix))


def key_only() -> bytes:
    """KeyOnlyFilter {1: len_as_val = false}: cells come back without their values."""
    return _filter("KeyOnlyFilter", _int_field(1, 0))


def _filter_list(operator: int, filters: list[bytes]) -> bytes:
    if len(filters) == 1:
        return filters[0]
    return _filter("FilterList", _int_field(1, operator) + b"".join(_len_field(2, f) for f in filters))


def all_of(*filters: bytes | None) -> bytes | None:
    """MUST_PASS_ALL of the given filters (None entries ignored; None when nothing is left)."""
    real = [f for f in filters if f is not None]
    return _filter_list(_MUST_PASS_ALL, real) if real else None


def any_of(*filters: bytes) -> bytes:
    """MUST_PASS_ONE of the given filters."""
    return _filter_list(_MUST_PASS_ONE, list(filters))
