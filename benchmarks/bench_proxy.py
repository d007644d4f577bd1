"""FaultProxy overhead with no faults: throughput and added round-trip latency, against a
direct connection to the same upstream, measured side by side in one run (interleaved
repeats; the host is noisy, so medians and ratios are what to read).

    python benchmarks/bench_proxy.py [--megabytes 256] [--repeats 5] [--json]

Goals (toxiproxy's published figures): >= 1 GB/s through the proxy on loopback, and < 100 µs
added latency per round trip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import socketeer

CHUNK = 1024 * 1024


def throughput(endpoint: str, total: int) -> float:
    """Bytes per second of a one-way bulk transfer to a discarding upstream."""
    data = memoryview(bytearray(CHUNK))
    with socketeer.connect(endpoint, timeout=30) as stream:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            stream.send_all(data)
            sent += CHUNK
        stream.close_write()
        stream.recv(1, timeout=30)  # the upstream closes once it has read everything
        return total / (time.perf_counter() - start)


def round_trip(endpoint: str, count: int) -> float:
    """Median seconds per 1-byte ping-pong to an echoing upstream."""
    samples = []
    with socketeer.connect(endpoint, timeout=10) as stream:
        for _ in range(count):
            start = time.perf_counter()
            stream.send_all(b"x")
            stream.recv_exactly(1)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    total = args.megabytes * CHUNK

    # The discard server closes each connection at end of stream, so the client's last recv
    # returns once every byte has been read upstream.
    sink, echo = socketeer.Server(builtin="discard"), socketeer.Server(builtin="echo")
    sink.listen("tcp://127.0.0.1:0")
    echo.listen("tcp://127.0.0.1:0")
    with sink, echo:
        with socketeer.FaultProxy(sink.endpoint()) as sink_proxy, socketeer.FaultProxy(echo.endpoint()) as echo_proxy:
            results: dict[str, list[float]] = {"direct_bps": [], "proxy_bps": [], "direct_rtt": [], "proxy_rtt": []}
            for _ in range(args.repeats):  # interleaved: both see the same host noise
                results["direct_bps"].append(throughput(sink.endpoint(), total))
                results["proxy_bps"].append(throughput(sink_proxy.endpoint, total))
                results["direct_rtt"].append(round_trip(echo.endpoint(), args.round_trips))
                results["proxy_rtt"].append(round_trip(echo_proxy.endpoint, args.round_trips))
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary["throughput_ratio"] = summary["proxy_bps"] / summary["direct_bps"]
    summary["added_latency_us"] = (summary["proxy_rtt"] - summary["direct_rtt"]) * 1e6
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"throughput  direct {summary['direct_bps'] / 1e9:6.2f} GB/s   proxy {summary['proxy_bps'] / 1e9:6.2f} GB/s"
              f"   ratio {summary['throughput_ratio']:.2f}   (goal: proxy >= 1 GB/s)")
        print(f"round trip  direct {summary['direct_rtt'] * 1e6:6.1f} µs     proxy {summary['proxy_rtt'] * 1e6:6.1f} µs"
              f"     added {summary['added_latency_us']:.1f} µs   (goal: < 100 µs)")
    return summary


if __name__ == "__main__":
    main()
