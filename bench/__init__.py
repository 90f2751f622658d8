"""kijirest benchmarks (not tests): `python -m bench`, see bench/README.md.

Modules: `data` (the data set, its bytes and loaders), `client` (the HTTP client process),
`direct` (in-process baselines), `procs` (processes, RSS, CPU, py-spy), `trivial` (the client's
ceiling), `whatif` (proposed gateway changes, patched in for measurement).
"""
