"""The echo servers the benchmark harness measures, one module per server, each run in a process
of its own: ``python -m socketeer.benchmark.servers.NAME ENDPOINT [--cpu N] [--lifetime S]``
(see :mod:`socketeer.benchmark.servers.common` for what they share)."""
