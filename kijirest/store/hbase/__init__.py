"""The HBase store: a real HBase through its two Thrift gateways.

- Thrift 2 (`THBaseService`, IDL subset in `hbase_thrift2.thrift`, loaded with thriftpy2, buffered
  transport + binary protocol) carries every row read and write, and table creation.
- Thrift 1 through happybase (the port in the URI) lists and drops tables and increments counters.

Why not happybase for latest-version reads too: Thrift 2 gives the same cells already in HBase order
(family, qualifier, newest first) for every read, one code path instead of two that must agree.

One module per concern:
- `thrift.py`: the two Thrift modules, and replies decoded into slot classes (lean decoding);
- `pool.py`: connections, one pool per gateway, retries and the mapping of errors;
- `fastread.py`: scan replies read by the C reader `_thrift2fast.c` (optional) into row tuples;
- `filters.py`: HBase filters as serialized protobuf; `reads.py`: ReadOptions as Thrift 2 reads;
- `store.py`: `HBaseStore` and its scanner.
"""

from kijirest.store.hbase.store import HBaseStore

__all__ = ["HBaseStore"]
