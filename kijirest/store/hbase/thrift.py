"""The two Thrift interfaces of HBase, as Python modules, and the lean decoding of read replies.

- `thrift2`: Thrift 2 (`THBaseService`), loaded with thriftpy2 from `hbase_thrift2.thrift` (the
  subset of HBase's IDL the store uses, checked field by field against the jar's by a test).
- `thrift1`: happybase's Thrift 1 module (loaded by `import happybase`), for its error replies.

At import, the replies that carry `TResult`s (`getScannerRows`, `getMultiple`) are rewired to
decode into `_ReadResult` / `_ReadCell`: classes with slots and no Python `__init__`. thriftpy2's
generated structs run a Python `__init__` that sets every field before decoding; with a few
million cells a second that was a third of the Thrift decoding time. Requests never carry a
TResult, and puts keep building real `TColumnValue`s.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import ClassVar

import happybase  # noqa: F401 - loads the Thrift 1 module `Hbase_thrift`
import thriftpy2

from kijirest.store.base import Cell, Row

#: happybase's Thrift 1 module: its error replies
thrift1 = importlib.import_module("Hbase_thrift")
#: the Thrift 2 IDL, loaded by thriftpy2
thrift2 = thriftpy2.load(
    str(Path(__file__).with_name("hbase_thrift2.thrift")), module_name="kijirest_hbase_thrift2_thrift"
)


class _ReadCell:
    """A `TColumnValue` as scans and gets decode it: slots and no Python `__init__`."""

    __slots__ = ("family", "qualifier", "tags", "timestamp", "type", "value")
    thrift_spec = thrift2.TColumnValue.thrift_spec


class _ReadResult:
    """A `TResult` as decoded (see `_ReadCell`)."""

    __slots__ = ("columnValues", "partial", "row", "stale")
    thrift_spec: ClassVar[dict[int, tuple]] = {
        fid: (spec[0], spec[1], (spec[2][0], _ReadCell), *spec[3:]) if spec[1] == "columnValues" else spec
        for fid, spec in thrift2.TResult.thrift_spec.items()
    }


def _decode_results_lean() -> None:
    """Every reply holding `TResult`s decodes into the slot classes above."""
    for name in ("getScannerRows_result", "getMultiple_result"):
        spec = getattr(thrift2.THBaseService, name).thrift_spec
        ttype, field, inner, *rest = spec[0]
        if isinstance(inner, tuple):  # list<TResult>
            assert inner[1] is thrift2.TResult
            spec[0] = (ttype, field, (inner[0], _ReadResult), *rest)
        else:
            assert inner is thrift2.TResult
            spec[0] = (ttype, field, _ReadResult, *rest)


_decode_results_lean()


def result_cells(result: _ReadResult) -> list[Cell]:
    """A decoded `TResult`'s cells as store tuples."""
    return [(cv.family, cv.qualifier, cv.timestamp, cv.value) for cv in result.columnValues]


def row_tuples(results: list[_ReadResult]) -> list[Row]:
    """Decoded `TResult`s as store rows."""
    return [(r.row, result_cells(r)) for r in results]
