"""Echo servers side by side: socketeer's Server, socketeer.aio and socketeer.aio.Loop beside
asyncio, uvloop, selectors and a plain C epoll server, each req/s a ratio to the C one, with the
server's CPU time per request, and the goals those ratios are held to.

One implementation, two drivers: ``socketeer bench`` (the installed package; ``--quick`` for a
run under a minute) and ``benchmarks/run.py`` in a source checkout (the full matrix).

- :mod:`.tools`: the load generator and the C reference (shipped in the wheel's ``bin/``)
- :mod:`.harness`: the servers and configs, starting a server, measuring it, the run
- :mod:`.report`: rows, ratios to C, the table
- :mod:`.goals`: the ratios issue 14 asks for, judged from a run's rounds
- :mod:`.command`: the command line both drivers share
- :mod:`.servers`: the echo servers, one module each
"""
