"""`getScannerRows` with the reply read by the C reader (`_thrift2fast.c`) straight into row tuples.

thriftpy2 decodes every cell of a scan reply into an object that the store then copies into a
tuple; the C reader builds the tuples directly while the reply arrives. This module frames the
call around it: it writes the request bytes, reads the reply's header and the list header itself,
hands the list of `TResult`s to the C reader as the socket delivers it, and hands anything else
(an exception reply, an unexpected shape) to thriftpy2 whole, so errors come out exactly as on the
thriftpy2 path. `c_reader` is None when the extension was not built (setup.py builds it when a C
compiler is there); the store then reads every reply with thriftpy2.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from thriftpy2.protocol import TCyBinaryProtocol
from thriftpy2.thrift import TClient
from thriftpy2.transport import TTransportException
from thriftpy2.transport.memory import TCyMemoryBuffer

from kijirest.store.base import Row
from kijirest.store.hbase.pool import Connection, socket_readable
from kijirest.store.hbase.thrift import row_tuples, thrift2

try:  # the C reader of scan replies (setup.py builds it when a C compiler is there)
    import kijirest.store.hbase._thrift2fast as c_reader
except ImportError:  # pragma: no cover - depends on the install
    c_reader = None

_T_LIST, _T_STRUCT = 15, 12
_REPLY = 0x80010002  # strict binary protocol version 1, message type REPLY
_RECV_BYTES = 256 * 1024


def scanner_rows_request(scanner_id: int, size: int) -> bytes:
    """A `getScannerRows(scannerId, numRows)` call in the strict binary protocol, as thriftpy2
    writes it (version|CALL, name, seqid 0, the args struct)."""
    name = b"getScannerRows"
    return b"".join(
        (
            struct.pack(">Ii", 0x80010001, len(name)),
            name,
            struct.pack(">ibhibhib", 0, 8, 1, scanner_id, 8, 2, size, 0),
        )
    )


def scanner_rows(conn: Connection, scanner_id: int, size: int) -> list[Row]:
    """`getScannerRows` with the reply read by the C reader straight into row tuples, as it
    arrives. Anything but a plain list of rows (an exception, an unexpected shape) is read whole
    and handed to thriftpy2, so errors are raised exactly as on the thriftpy2 path."""
    sock = conn.sock
    assert sock is not None and c_reader is not None
    sock.sendall(scanner_rows_request(scanner_id, size))
    buf = bytearray()

    def more() -> None:
        chunk = sock.recv(_RECV_BYTES)
        if not chunk:
            raise TTransportException(
                type=TTransportException.END_OF_FILE, message="HBase closed the connection"
            )
        buf.extend(chunk)

    # header: version|type, name, seqid, then the result struct's first field (+ the list header)
    while len(buf) < 8:
        more()
    version, name_len = struct.unpack_from(">Ii", buf)
    head = 8 + name_len + 4
    if version != _REPLY or not 0 <= name_len <= 256:
        return _scanner_rows_thriftpy2(buf, more)
    while len(buf) < head + 1:
        more()
    if buf[head] != _T_LIST:  # not the success field: an exception of the method
        return _scanner_rows_thriftpy2(buf, more)
    while len(buf) < head + 8:
        more()
    if buf[head + 1 : head + 3] != b"\0\0" or buf[head + 3] != _T_STRUCT:
        return _scanner_rows_thriftpy2(buf, more)
    (count,) = struct.unpack_from(">i", buf, head + 4)
    if count < 0:
        return _scanner_rows_thriftpy2(buf, more)  # thriftpy2 reports it
    pos = head + 8
    rows: list[Row] = []
    while True:
        part, pos = c_reader.parse_results(buf, pos, count - len(rows))
        rows += part
        if len(rows) == count:
            break
        del buf[:pos]  # keep only the incomplete rest
        pos = 0
        # parse again once the incomplete rest has doubled, or nothing more is there yet: a row of
        # many MB is then parsed a few times, not once per socket read (the rest of the reply may
        # be shorter than that: never wait for bytes the server has not sent)
        want = 2 * len(buf)
        more()
        while len(buf) < want and socket_readable(sock):
            more()
    # after the list: more fields of the result struct (none expected), then its stop byte
    while True:
        while len(buf) <= pos:
            more()
        ttype = buf[pos]
        if ttype == 0:
            return rows
        while len(buf) < pos + 3:
            more()
        while (end := c_reader.skip_value(buf, pos + 3, ttype)) < 0:
            more()
        pos = end


def _scanner_rows_thriftpy2(buf: bytearray, more: Callable[[], None]) -> list[Row]:
    assert c_reader is not None
    while c_reader.message_end(buf) < 0:
        more()
    reply = TClient(thrift2.THBaseService, TCyBinaryProtocol(TCyMemoryBuffer(bytes(buf))))
    return row_tuples(reply._recv("getScannerRows"))  # raises the reply's exception
