"""``socketeer ss -i``: a socket's TcpInfo as the second line iproute2's ss prints for it.

Only what :class:`socketeer.TcpInfo` holds, in ss's order, spelling and units (milliseconds,
bits per second); what ss takes from elsewhere (the congestion control's name, window scales,
pacing rate, the extra counters of newer kernels) is left out rather than guessed.
"""

from __future__ import annotations

from typing import Optional

from ..constants import TcpState
from ..socket import TcpInfo

__all__ = ["tcp_info_text"]


def _ms(microseconds: int) -> str:
    return f"{microseconds / 1000:g}"


def _bandwidth(bits: float, numeric: bool) -> str:
    """ss's sprint_bw: the whole number with -n, else three digits and a unit (146G, 1.5M)."""
    if numeric:
        return f"{bits:.0f}"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g}{unit}"
    return f"{bits:g}"


def tcp_info_text(info: Optional[TcpInfo], state: object, numeric: bool) -> str:
    """The words ss's tcp_stats_print writes for ``info`` (each with a leading space); empty for
    a socket the kernel sends no tcp_info for (TIME_WAIT, SYN_RECV, raw). ``numeric``: ss -n,
    which changes how rates are written."""
    if info is None:
        return ""
    words: list[str] = []

    def add(word: str, value: object, shown: object = None) -> None:
        if value:
            words.append(f" {word}{value if shown is None else shown}")

    add("rto:", info.rto if info.rto != 3_000_000 else 0, _ms(info.rto))
    add("backoff:", info.backoff)
    add("rtt:", info.rtt, f"{_ms(info.rtt)}/{_ms(info.rttvar)}")
    add("ato:", info.ato, _ms(info.ato))
    add("mss:", info.snd_mss)
    add("pmtu:", info.pmtu)
    add("rcvmss:", info.rcv_mss)
    add("advmss:", info.advmss)
    add("cwnd:", info.snd_cwnd)
    add("ssthresh:", info.snd_ssthresh if info.snd_ssthresh < 0xFFFF else 0)
    add("bytes_sent:", info.bytes_sent)
    add("bytes_retrans:", info.bytes_retrans)
    add("bytes_acked:", info.bytes_acked)
    add("bytes_received:", info.bytes_received)
    add("segs_out:", info.segs_out)
    add("segs_in:", info.segs_in)
    if info.rtt and info.snd_mss and info.snd_cwnd:
        words.append(f" send {_bandwidth(info.snd_cwnd * info.snd_mss * 8_000_000 / info.rtt, numeric)}bps")
    add("lastsnd:", info.last_data_sent)
    add("lastrcv:", info.last_data_recv)
    add("lastack:", info.last_ack_recv)
    if info.delivery_rate:
        words.append(f" delivery_rate {_bandwidth(info.delivery_rate * 8, numeric)}bps")
    if info.delivery_rate_app_limited:
        words.append(" app_limited")
    add("unacked:", info.unacked)
    if info.retrans or info.total_retrans:
        words.append(f" retrans:{info.retrans}/{info.total_retrans}")
    add("lost:", info.lost)
    add("sacked:", info.sacked if state != TcpState.LISTEN else 0)
    add("fackets:", info.fackets)
    if info.reordering != 3:
        words.append(f" reordering:{info.reordering}")
    add("rcv_rtt:", info.rcv_rtt, _ms(info.rcv_rtt))
    add("rcv_space:", info.rcv_space)
    add("rcv_ssthresh:", info.rcv_ssthresh)
    add("notsent:", info.notsent_bytes)
    add("minrtt:", info.min_rtt if info.min_rtt != 0xFFFFFFFF else 0, _ms(info.min_rtt))
    return "".join(words)
