"""Metadata and dependencies are in setup.cfg; this file only declares the optional C accelerator
(kijirest/store/hbase/_thrift2fast.c: Thrift 2 scan replies straight into row tuples). `optional=True`:
without a C compiler the install still succeeds and the HBase store uses thriftpy2 alone."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("kijirest.store.hbase._thrift2fast", ["kijirest/store/hbase/_thrift2fast.c"], optional=True),
    ]
)
