// TCP_INFO lives in its own file: <linux/tcp.h> has the full, current struct tcp_info, and it
// clashes with glibc's <netinet/tcp.h>, which the rest of the core may include.
#include <linux/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "socketeer/error.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

TcpInfo Socket::tcp_info() const {
  struct ::tcp_info info{};
  socklen_t size = sizeof info;
  check(::getsockopt(checked_fd("tcp_info"), IPPROTO_TCP, TCP_INFO, &info, &size),
        "getsockopt(TCP_INFO)");
  return tcp_info_from_kernel(&info, size);
}

TcpInfo tcp_info_from_kernel(const void* data, size_t size) {
  // An older kernel's struct is a prefix of ours: the fields it lacks stay 0.
  struct ::tcp_info info{};
  std::memcpy(&info, data, std::min(size, sizeof info));
  return TcpInfo{
      info.tcpi_state, info.tcpi_ca_state, info.tcpi_retransmits, info.tcpi_probes,
      info.tcpi_backoff, info.tcpi_options, info.tcpi_rto, info.tcpi_ato, info.tcpi_snd_mss,
      info.tcpi_rcv_mss, info.tcpi_unacked, info.tcpi_sacked, info.tcpi_lost, info.tcpi_retrans,
      info.tcpi_fackets, info.tcpi_last_data_sent, info.tcpi_last_ack_recv,
      info.tcpi_last_data_recv, info.tcpi_last_ack_sent, info.tcpi_pmtu, info.tcpi_rcv_ssthresh,
      info.tcpi_rtt, info.tcpi_rttvar, info.tcpi_snd_ssthresh, info.tcpi_snd_cwnd,
      info.tcpi_advmss, info.tcpi_reordering, info.tcpi_rcv_rtt, info.tcpi_rcv_space,
      info.tcpi_total_retrans, info.tcpi_bytes_acked, info.tcpi_bytes_received,
      info.tcpi_bytes_sent, info.tcpi_bytes_retrans, info.tcpi_segs_out, info.tcpi_segs_in,
      info.tcpi_notsent_bytes, info.tcpi_min_rtt, info.tcpi_delivery_rate_app_limited,
      info.tcpi_delivery_rate};
}

}  // namespace socketeer
