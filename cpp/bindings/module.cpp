#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "socketeer's C++ core: sockets, addresses and polling. Use the socketeer package.";
  socketeer::bindings::init_errors(m);
  socketeer::bindings::init_timeouts(m);
  socketeer::bindings::init_address(m);
  socketeer::bindings::init_link_address(m);
  socketeer::bindings::init_socket(m);
  socketeer::bindings::init_stream(m);
  socketeer::bindings::init_server(m);
  socketeer::bindings::init_proxy(m);
  socketeer::bindings::init_poller(m);
  socketeer::bindings::init_accept(m);
  socketeer::bindings::init_sock_diag(m);
  socketeer::bindings::init_tcp_info(m);
  socketeer::bindings::init_netlink(m);
  socketeer::bindings::init_loop_core(m);
  socketeer::bindings::init_loop_transport(m);
  socketeer::bindings::init_loop_datagram_transport(m);
}
