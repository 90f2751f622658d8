"""kijirest: Kiji tables over the KijiREST /v1 HTTP API, streamed, on HBase or an embedded store."""

__version__ = "0.1.0"
