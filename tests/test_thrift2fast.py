"""The C reader of Thrift 2 scan replies (kijirest/store/hbase/_thrift2fast.c), against replies written by
thriftpy2 (an independent writer of the same protocol). Its use on a real HBase is covered by the
HBase runs of the store conformance suite; the fallback without it by test_hbase_store.py."""

from __future__ import annotations

import os
import struct
from typing import ClassVar

import pytest
from thriftpy2.protocol import TCyBinaryProtocolFactory
from thriftpy2.thrift import TPayload, TType
from thriftpy2.utils import serialize

from kijirest.store.hbase.fastread import scanner_rows_request
from kijirest.store.hbase.thrift import thrift2

try:
    from kijirest.store.hbase import _thrift2fast as fast
except ImportError:  # not built (no C compiler at install time)
    fast = None


@pytest.fixture(autouse=True)
def _built() -> None:
    if fast is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "kijirest.store.hbase._thrift2fast was not built (setup.py; is a C compiler installed?)"
            )
        pytest.skip("kijirest.store.hbase._thrift2fast is not built (pip install -e . with a C compiler)")


PROTOCOL = TCyBinaryProtocolFactory()


class FutureCell(TPayload):
    """A TColumnValue as a later HBase might send it: the known fields plus unknown ones of every
    Thrift type, which the reader must skip."""

    thrift_spec: ClassVar[dict] = {
        1: (TType.STRING, "family", False),
        2: (TType.STRING, "qualifier", False),
        3: (TType.STRING, "value", False),
        4: (TType.I64, "timestamp", False),
        5: (TType.STRING, "tags", False),
        6: (TType.BYTE, "type", False),
        7: (TType.MAP, "attrs", (TType.STRING, (TType.LIST, TType.I32)), False),
        8: (TType.STRUCT, "nested", thrift2.TTimeRange, False),
        9: (TType.DOUBLE, "weight", False),
        10: (TType.SET, "flags", TType.BOOL, False),
        11: (TType.I16, "small", False),
    }
    default_spec: ClassVar[list] = [(spec[1], None) for spec in thrift_spec.values()]


class FutureResult(TPayload):
    thrift_spec: ClassVar[dict] = {
        1: (TType.STRING, "row", False),
        2: (TType.LIST, "columnValues", (TType.STRUCT, FutureCell), False),
        3: (TType.BOOL, "stale", False),
        4: (TType.BOOL, "partial", False),
        9: (TType.STRING, "comment", False),
    }
    default_spec: ClassVar[list] = [(spec[1], None) for spec in thrift_spec.values()]


def reply(results: list) -> tuple[bytes, int, int]:
    """The serialized success struct of getScannerRows_result, where its rows start, how many."""
    data = serialize(thrift2.THBaseService.getScannerRows_result(success=results), PROTOCOL)
    assert data[0] == TType.LIST and data[1:3] == b"\0\0" and data[3] == TType.STRUCT
    return data, 8, struct.unpack_from(">i", data, 4)[0]


def plain_rows(n: int, cells: int = 3) -> list:
    return [
        thrift2.TResult(
            row=b"row\x00\xff%d" % i,
            columnValues=[
                thrift2.TColumnValue(
                    family=b"B", qualifier=b"q%d" % j, value=bytes(range(j)) * (1 + i % 3), timestamp=j - 1
                )
                for j in range(cells)
            ],
        )
        for i in range(n)
    ]


def expected(results: list) -> list:
    return [(r.row, [(c.family, c.qualifier, c.timestamp, c.value) for c in r.columnValues]) for r in results]


def test_rows_read_as_store_tuples() -> None:
    results = plain_rows(50)
    data, pos, count = reply(results)
    rows, end = fast.parse_results(data, pos, count)
    assert rows == expected(results)
    assert end == len(data) - 1 and data[end] == 0  # the result struct's stop byte follows
    assert rows[0][1][0] == (b"B", b"q0", -1, b"")  # negative timestamps, empty values


def test_unknown_fields_of_any_type_are_skipped() -> None:
    cells = [
        FutureCell(
            family=b"f",
            qualifier=b"q%d" % j,
            value=b"v",
            timestamp=2**62 + j,
            tags=b"t",
            type=4,
            attrs={b"a": [1, 2], b"b": []},
            nested=thrift2.TTimeRange(minStamp=1, maxStamp=2),
            weight=0.5,
            flags={True},
            small=-3,
        )
        for j in range(3)
    ]
    results = [FutureResult(row=b"r", columnValues=cells, stale=True, partial=False, comment=b"later")]
    payload = b"".join(serialize(r, PROTOCOL) for r in results)
    rows, end = fast.parse_results(payload, 0, 1)
    assert rows == [(b"r", [(b"f", b"q%d" % j, 2**62 + j, b"v") for j in range(3)])]
    assert end == len(payload)


def test_missing_row_and_timestamp_read_as_none_missing_cells_as_empty() -> None:
    cell = thrift2.TColumnValue(family=b"f", qualifier=b"q", value=b"v")
    payload = serialize(thrift2.TResult(columnValues=[cell]), PROTOCOL)
    assert fast.parse_results(payload, 0, 1) == ([(None, [(b"f", b"q", None, b"v")])], len(payload))
    empty = serialize(FutureResult(row=b"r"), PROTOCOL)
    assert fast.parse_results(empty, 0, 1) == ([(b"r", [])], len(empty))


def test_a_reply_read_while_it_arrives_gives_the_same_rows() -> None:
    """Every cut point: the complete rows so far, and where to go on (the rest of the reply is
    appended, as from the socket)."""
    results = plain_rows(6, cells=4)
    data, start, count = reply(results)
    for cut in range(start, len(data) + 1):
        rows, pos = fast.parse_results(data[:cut], start, count)
        more, end = fast.parse_results(data, pos, count - len(rows))
        assert rows + more == expected(results), cut
        assert end == len(data) - 1


def test_count_limits_the_rows_read() -> None:
    results = plain_rows(5)
    data, start, _ = reply(results)
    rows, pos = fast.parse_results(data, start, 2)
    assert rows == expected(results)[:2]
    assert fast.parse_results(data, pos, 3)[0] == expected(results)[2:]
    assert fast.parse_results(data, start, 0) == ([], start)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x0b\x00\x01\xff\xff\xff\xff", "negative binary length"),
        (b"\x0f\x00\x02\x0b\x00\x00\x00\x01", "not a list of structs"),
        (b"\x0f\x00\x02\x0c\xff\xff\xff\xff", "negative list size"),
        (b"\x0f\x00\x02\x0c\x00\x00\x00\x01\x00\x00", "without family, qualifier or value"),
        (b"\x07\x00\x09\x00", "unknown Thrift type"),
        (b"\x0c\x00\x09" * 70, "nested too deeply"),
    ],
)
def test_malformed_replies_raise(payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fast.parse_results(payload, 0, 1)


def test_positions_outside_the_buffer_raise() -> None:
    with pytest.raises(ValueError, match="outside"):
        fast.parse_results(b"\x00", 2, 1)
    with pytest.raises(ValueError, match="outside"):
        fast.skip_value(b"\x00", -1, TType.STRUCT)


def test_message_end_and_skip_value() -> None:
    results = plain_rows(3)
    body = serialize(thrift2.THBaseService.getScannerRows_result(success=results), PROTOCOL)
    name = b"getScannerRows"
    message = struct.pack(">Ii", 0x80010002, len(name)) + name + struct.pack(">i", 0) + body
    assert fast.message_end(message) == len(message)
    assert fast.message_end(message + b"rest") == len(message)
    assert all(fast.message_end(message[:cut]) == -1 for cut in range(len(message)))
    assert fast.skip_value(body, 0, TType.STRUCT) == len(body)
    assert fast.skip_value(body[:-1], 0, TType.STRUCT) == -1
    with pytest.raises(ValueError, match="strict"):
        fast.message_end(b"\x00\x00\x00\x05hello")


def test_the_request_is_what_thriftpy2_sends() -> None:
    args = thrift2.THBaseService.getScannerRows_args(scannerId=77, numRows=1000)
    name = b"getScannerRows"
    thriftpy2_bytes = struct.pack(">Ii", 0x80010001, len(name)) + name + struct.pack(">i", 0)
    thriftpy2_bytes += serialize(args, PROTOCOL)
    assert scanner_rows_request(77, 1000) == thriftpy2_bytes
