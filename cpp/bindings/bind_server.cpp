// _core.Reactor, _core.Connection, _core.DatagramEndpoint: the C++ event loop with Python
// handlers. The loop runs with the GIL released; PythonDispatcher takes it once per loop turn
// to deliver the whole batch of events.
#include <unordered_map>

#include "bindings.hpp"
#include "fast_method.hpp"
#include "lent_view.hpp"
#include "socketeer/reactor.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

class PythonDispatcher;

// The Python face of one Reactor and whichever dispatcher drives it. close() drops both, which
// also breaks the reference cycle box -> dispatcher -> handles -> box.
struct ReactorBox {
  std::unique_ptr<Reactor> reactor;
  std::unique_ptr<Dispatcher> dispatcher;
  PythonDispatcher* python = nullptr;
  // The Python thread state run() released the GIL from, while run() is in C++ without the GIL
  // (null otherwise, and while a LoopGil holds it). The loop thread only.
  PyThreadState* loop_thread = nullptr;

  Reactor& get() {
    if (!reactor) throw py::value_error("the server is closed");
    return *reactor;
  }
};

// A handle Python code holds for one connection: readable from any thread through the shared
// ConnectionState; send/close go to the reactor (queued when called off the loop thread).
struct Connection {
  ReactorBox* box;
  std::shared_ptr<const ConnectionState> state;
  py::object server;  // keeps the box alive while handles exist
};

struct DatagramEndpointHandle {
  ReactorBox* box;
  uint64_t id;
  py::object server;
  int family;  // kept so send_to converts addresses without a getsockname per datagram
};

// Hands data to one of the reactor's queueing calls, send(data, size, token). bytes, the common
// case, are sent straight from the object (a token keeps it alive until sent) without the buffer
// protocol; anything else is read through a buffer and copied by the reactor.
template <typename Send>
bool send_buffer(Reactor& reactor, PyObject* data, Send&& send) {
  if (PyBytes_CheckExact(data) && reactor.in_loop_thread()) {
    Py_INCREF(data);  // bytes are immutable: the reactor may send straight from them
    try {
      return send(PyBytes_AS_STRING(data), static_cast<size_t>(PyBytes_GET_SIZE(data)), reinterpret_cast<uint64_t>(data));
    } catch (...) {
      Py_DECREF(data);  // refused before the reactor took the token (send_message's checks)
      throw;
    }
  }
  ReadBuffer buffer;
  if (!buffer.acquire(data)) throw py::error_already_set();
  return send(buffer.data(), buffer.size(), uint64_t{0});
}

// The GIL for one dispatch on the loop thread. pybind11's gil_scoped_acquire looks the thread
// state up (thread-local storage, its internals) on every use: ~130 instructions per loop turn
// on top of taking the GIL itself. run() keeps the state it released, and this hands it straight
// back. Anywhere else (the reactor's destructor, called from Python) it falls back to pybind11's.
class LoopGil {
 public:
  explicit LoopGil(ReactorBox& box) : box_(box), state_(std::exchange(box.loop_thread, nullptr)) {
    if (state_) PyEval_RestoreThread(state_);
    else fallback_.emplace();
  }
  ~LoopGil() {
    if (state_) box_.loop_thread = PyEval_SaveThread();
  }
  LoopGil(const LoopGil&) = delete;
  LoopGil& operator=(const LoopGil&) = delete;

 private:
  ReactorBox& box_;
  PyThreadState* state_;
  std::optional<py::gil_scoped_acquire> fallback_;
};

// run()'s side of LoopGil: releases the GIL for the whole loop and says from which thread state.
class ReleaseForLoop {
 public:
  explicit ReleaseForLoop(ReactorBox& box) : box_(box), state_(PyEval_SaveThread()) { box.loop_thread = state_; }
  ~ReleaseForLoop() {
    box_.loop_thread = nullptr;
    PyEval_RestoreThread(state_);
  }
  ReleaseForLoop(const ReleaseForLoop&) = delete;
  ReleaseForLoop& operator=(const ReleaseForLoop&) = delete;

 private:
  ReactorBox& box_;
  PyThreadState* state_;
};

// A handler method, looked up once; absent (or None) means that event is not delivered. A
// bound method is kept as its function and self, so each call goes straight to the function
// (self in the first argument slot) instead of through the bound method, which would only put
// self there itself.
class HandlerMethod {
 public:
  HandlerMethod(py::handle handler, const char* name) {
    if (!py::hasattr(handler, name)) return;
    py::object method = handler.attr(name);
    if (method.is_none()) return;
    if (PyMethod_Check(method.ptr())) {
      function_ = py::reinterpret_borrow<py::object>(PyMethod_GET_FUNCTION(method.ptr()));
      self_ = py::reinterpret_borrow<py::object>(PyMethod_GET_SELF(method.ptr()));
    } else {
      function_ = std::move(method);
    }
  }
  explicit operator bool() const { return static_cast<bool>(function_); }

  // Calls with borrowed arguments through vectorcall: no argument tuple. The slot before the
  // arguments holds self, or is room a callable may use (PY_VECTORCALL_ARGUMENTS_OFFSET).
  template <typename... Args>
  void operator()(Args... args) const {
    std::array<PyObject*, sizeof...(Args) + 1> slots{self_.ptr(), args...};
    PyObject* result = self_ ? PyObject_Vectorcall(function_.ptr(), slots.data(), slots.size(), nullptr)
                             : PyObject_Vectorcall(function_.ptr(), slots.data() + 1,
                                                   sizeof...(Args) | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    if (!result) throw py::error_already_set();
    Py_DECREF(result);
  }

 private:
  py::object function_, self_;
};

py::bytes bytes_of(std::string_view data) { return py::bytes(data.data(), data.size()); }

// The Python Address objects of recent datagram senders. A UDP server hears the same peers
// again and again, and making a pybind11 object per datagram (instance registry, holder,
// dealloc) cost a third of the whole request; Address objects are immutable, so one can be
// handed out again. Bounded: when full it starts over.
class AddressCache {
 public:
  py::object get(const Address& address) {
    auto it = objects_.find(address);
    if (it != objects_.end()) return it->second;
    if (objects_.size() >= kLimit) objects_.clear();
    return objects_.emplace(address, py::cast(address)).first->second;
  }

 private:
  struct Hash {
    size_t operator()(const Address& address) const { return hash_of(address); }
  };
  static constexpr size_t kLimit = 4096;
  std::unordered_map<Address, py::object, Hash> objects_;
};


class PythonDispatcher : public Dispatcher {
 public:
  PythonDispatcher(ReactorBox* box, py::object server, py::object handler, py::object on_error, bool views)
      : box_(box),
        server_(std::move(server)),
        on_connect_(handler, "on_connect"),
        on_message_(handler, "on_message"),
        on_messages_(handler, "on_messages"),
        on_close_(handler, "on_close"),
        on_datagram_(handler, "on_datagram"),
        on_error_(std::move(on_error)),
        lender_(views ? std::make_unique<ViewLender>() : nullptr) {}

  void add_endpoint(uint64_t id, py::object endpoint) { endpoints_[id] = std::move(endpoint); }

  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
    LoopGil gil(*box_);
    drop_deferred();  // last turn's sent bytes, now that the GIL is held anyway
    dispatched_ = true;
    SettleViews settle{lender_.get()};  // also when a KeyboardInterrupt leaves early
    if (!on_messages_) {
      for (const auto& event : events) deliver(reactor, event);
      return;
    }
    py::list batch;
    for (const auto& event : events) {
      if (event.kind == ReactorEvent::Kind::message) {
        batch.append(py::make_tuple(connection(event.id), payload(event)));
        continue;
      }
      if (batch.size()) deliver_batch(reactor, batch);
      deliver(reactor, event);
    }
    if (batch.size()) deliver_batch(reactor, batch);
  }

  // Tokens are the bytes objects the reactor sent from. After a turn that dispatched, their
  // references are dropped at the start of the next dispatch, which holds the GIL anyway: one
  // GIL acquisition per busy turn instead of two. After a turn without a dispatch they are
  // dropped at once: sent bytes stay referenced until the next loop turn at the latest.
  void release(std::span<const uint64_t> tokens) override {
    deferred_.insert(deferred_.end(), tokens.begin(), tokens.end());
    if (std::exchange(dispatched_, false)) return;
    LoopGil gil(*box_);
    drop_deferred();
  }

  // Destroyed from Python (ReactorBox.close, set_handler, deallocation): the GIL is held.
  ~PythonDispatcher() override { drop_deferred(); }

  void drop_deferred() {
    for (uint64_t token : deferred_) Py_DECREF(reinterpret_cast<PyObject*>(token));
    deferred_.clear();
  }

 private:
  struct SettleViews {
    ViewLender* lender;
    ~SettleViews() {
      if (lender) lender->settle();
    }
  };

  // A message's payload as handlers get it: a bytes copy, or a view lent from the input buffer.
  py::object payload(const ReactorEvent& event) {
    if (!lender_) return bytes_of(event.data);
    PyObject* view = lender_->lend(event);
    if (!view) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(view);
  }

  // Borrowed: the entry lives until its connection's `closed` event is delivered.
  py::handle connection(uint64_t id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? py::handle(Py_None) : py::handle(it->second);
  }

  void deliver(Reactor& reactor, const ReactorEvent& event) {
    py::handle target;  // borrowed from connections_ or endpoints_, or from `closing`
    py::object closing;
    try {
      switch (event.kind) {
        case ReactorEvent::Kind::opened:
          target = connections_[event.id] = py::cast(Connection{box_, reactor.connection_state(event.id), server_});
          if (on_connect_) on_connect_(target.ptr());
          break;
        case ReactorEvent::Kind::message:
          target = connection(event.id);
          if (on_message_) on_message_(target.ptr(), payload(event).ptr());
          break;
        case ReactorEvent::Kind::closed: {
          closing = py::reinterpret_borrow<py::object>(connection(event.id));
          target = closing;
          connections_.erase(event.id);
          if (on_close_) on_close_(target.ptr(), py::str(event.data.data(), event.data.size()).ptr());
          break;
        }
        case ReactorEvent::Kind::datagram:
          target = endpoints_[event.id];
          if (on_datagram_) on_datagram_(target.ptr(), bytes_of(event.data).ptr(), senders_.get(*event.from).ptr());
          break;
      }
    } catch (py::error_already_set& error) {
      if (!error.matches(PyExc_Exception)) throw;  // KeyboardInterrupt, SystemExit: stop the loop
      report(reactor, error, target, event.kind == ReactorEvent::Kind::datagram ? 0 : event.id);
    }
  }

  void deliver_batch(Reactor& reactor, py::list& batch) {
    try {
      on_messages_(batch.ptr());
    } catch (py::error_already_set& error) {
      if (!error.matches(PyExc_Exception)) throw;  // KeyboardInterrupt, SystemExit: stop the loop
      report(reactor, error, py::none(), 0);
    }
    batch = py::list();
  }

  // A handler raised: report it (logged by the Python layer) and close that connection; the
  // loop goes on.
  void report(Reactor& reactor, py::error_already_set& error, py::handle target, uint64_t id) {
    try {
      // The traceback travels beside the exception in error_already_set; put it back on the
      // exception so the error reporter (logging's exc_info) can print it.
      if (error.trace()) PyException_SetTraceback(error.value().ptr(), error.trace().ptr());
      on_error_(target, error.value());
    } catch (py::error_already_set& nested) {
      nested.discard_as_unraisable("socketeer.Server error reporter");
    }
    if (id) reactor.close(id, false);
  }

  ReactorBox* box_;
  py::object server_;
  HandlerMethod on_connect_, on_message_, on_messages_, on_close_, on_datagram_;
  py::object on_error_;
  std::unordered_map<uint64_t, py::object> connections_;
  std::unordered_map<uint64_t, py::object> endpoints_;
  AddressCache senders_;
  std::vector<uint64_t> deferred_;  // tokens whose references are still to be dropped
  bool dispatched_ = false;         // a dispatch ran since the last release()
  std::unique_ptr<ViewLender> lender_;  // Server(views=True)
};


ReactorOptions make_options(std::optional<Framing> framing, size_t read_buffer, size_t high, size_t low,
                            py::handle idle, size_t datagram_batch, size_t datagram_size,
                            bool tune_allocator, bool udp_gso) {
  ReactorOptions options;
  options.tune_allocator = tune_allocator;
  options.udp_gso = udp_gso;
  if (framing) options.framing = *framing;
  options.read_buffer = read_buffer;
  options.high_watermark = high;
  options.low_watermark = low;
  options.idle_timeout = timeout_arg(idle.ptr(), "idle_timeout");
  options.datagram_batch = datagram_batch;
  options.datagram_size = datagram_size;
  return options;
}

// Connection.send/send_message and DatagramEndpoint.send_to run once per message: vectorcall
// methods (see fast_method.hpp) instead of pybind11's dispatcher, which cost more than the rest
// of the call. send and send_message differ only in the reactor call that queues the bytes.
template <bool (Reactor::*Queue)(uint64_t, const char*, size_t, uint64_t)>
PyObject* queue_on_connection(const char* name, PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> given;
    if (nargs == 1 && !kwnames) given.values[0] = args[0];  // send(data), as nearly every call is
    else if (!given.parse(name, args, nargs, kwnames, {"data"}, 1)) return nullptr;
    Connection& c = *cpp_self<Connection>(self);
    // Off the loop thread the send is only queued, so the reactor cannot tell.
    if (!c.box->reactor || !c.state->open) Py_RETURN_FALSE;
    Reactor& reactor = *c.box->reactor;
    return py::bool_(send_buffer(reactor, given.values[0], [&](const char* data, size_t size, uint64_t token) {
             return (reactor.*Queue)(c.state->id, data, size, token);
           })).release().ptr();
  });
}

PyObject* connection_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return queue_on_connection<&Reactor::send>("send", self, args, nargs, kwnames);
}

PyObject* connection_send_message(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return queue_on_connection<&Reactor::send_message>("send_message", self, args, nargs, kwnames);
}

PyObject* endpoint_send_to(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> given;
    if (!given.parse("send_to", args, nargs, kwnames, {"data", "address"}, 2)) return nullptr;
    DatagramEndpointHandle& e = *cpp_self<DatagramEndpointHandle>(self);
    Reactor& reactor = e.box->get();
    Address to = to_address(e.family, given.values[1]);
    return py::bool_(send_buffer(reactor, given.values[0], [&](const char* data, size_t size, uint64_t token) {
             return reactor.send_to(e.id, data, size, to, token);
           })).release().ptr();
  });
}

PyMethodDef connection_methods[] = {
    {"send", fastcall(connection_send), METH_FASTCALL | METH_KEYWORDS,
     "send(data) -> bool\n\nQueues data (sent after this batch of events, or at once off the loop thread); "
     "False if closed."},
    {"send_message", fastcall(connection_send_message), METH_FASTCALL | METH_KEYWORDS,
     "send_message(data) -> bool\n\nLike send(), with the server's framing added (length prefix or "
     "delimiter) without copying data. Raises MessageTooLarge or ValueError for a message the framing "
     "cannot carry as one (over max_size, containing the delimiter, too long for the prefix)."},
    {nullptr, nullptr, 0, nullptr}};
PyMethodDef endpoint_methods[] = {
    {"send_to", fastcall(endpoint_send_to), METH_FASTCALL | METH_KEYWORDS,
     "send_to(data, address) -> bool\n\nQueues one datagram; False if it was dropped (queue full)."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void init_server(py::module_& m) {
  init_lent_buffer();
  auto connection_class = py::class_<Connection>(m, "Connection", py::dynamic_attr(),
                         "One connection of a socketeer.Server, as its handlers see it. Set any attribute on it "
                         "to keep per-connection state.")
      .def_property_readonly("id", [](const Connection& c) { return c.state->id; },
                             "A number unique among the server's connections.")
      .def_property_readonly("open", [](const Connection& c) { return c.state->open.load(); },
                             "False once the connection is closed (by either side).")
      .def_property_readonly("peer_address", [](const Connection& c) { return c.state->peer; },
                             "The client's Address.")
      .def_property_readonly("local_address", [](const Connection& c) { return c.state->local; },
                             "The server's Address for this connection.")
      .def("close", [](Connection& c) { if (c.box->reactor) c.box->reactor->close(c.state->id, false); },
           "Closes after what is queued has been sent.")
      .def("abort", [](Connection& c) { if (c.box->reactor) c.box->reactor->close(c.state->id, true); },
           "Resets (RST) at once.")
      .def("__repr__", [](const Connection& c) {
        std::string peer = c.state->peer ? to_string(*c.state->peer) : "?";
        return "<socketeer.Connection #" + std::to_string(c.state->id) + " " + peer +
               (c.state->open ? "" : " closed") + ">";
      });
  add_fast_methods(connection_class, connection_methods);

  auto endpoint_class = py::class_<DatagramEndpointHandle>(m, "DatagramEndpoint", "A bound datagram socket of a socketeer.Server.")
      .def_property_readonly("id", [](const DatagramEndpointHandle& e) { return e.id; })
      .def_property_readonly("address", [](const DatagramEndpointHandle& e) { return e.box->get().local_address(e.id); });
  add_fast_methods(endpoint_class, endpoint_methods);
  py::class_<ReactorBox>(m, "Reactor", "The C++ event loop behind socketeer.Server.")
      .def(py::init([](std::optional<Framing> framing, size_t read_buffer, size_t high, size_t low,
                       py::handle idle, size_t datagram_batch, size_t datagram_size,
                       bool tune_allocator, bool udp_gso) {
             auto box = std::make_unique<ReactorBox>();
             box->reactor = std::make_unique<Reactor>(make_options(framing, read_buffer, high, low, idle, datagram_batch,
                                                                   datagram_size, tune_allocator, udp_gso));
             return box;
           }),
           py::arg("framing") = py::none(), py::arg("read_buffer") = 64 * 1024,
           py::arg("high_watermark") = 4 * 1024 * 1024, py::arg("low_watermark") = 1024 * 1024,
           py::arg("idle_timeout") = py::none(), py::arg("datagram_batch") = 64, py::arg("datagram_size") = 65536,
           py::arg("tune_allocator") = true, py::arg("udp_gso") = true)
      .def("add_listener", [](ReactorBox& box, Socket& socket) { return box.get().add_listener(std::move(socket)); },
           py::arg("socket"),
           "Takes over a listening socket (the Python Socket is left closed); also while run() runs, "
           "whose loop adopts it in its next turn. A seqpacket socket needs raw framing (ValueError).")
      .def("add_datagram",
           [](py::object self, Socket& socket) {
             auto& box = self.cast<ReactorBox&>();
             int family = socket.family();
             uint64_t id = box.get().add_datagram(std::move(socket));
             if (box.python) box.python->add_endpoint(id, py::cast(DatagramEndpointHandle{&box, id, self, family}));
             return id;
           },
           py::arg("socket"), "Takes over a bound datagram socket (the Python Socket is left closed); also while "
           "run() runs, as add_listener.")
      .def("endpoint", [](py::object self, uint64_t id) {
        auto& box = self.cast<ReactorBox&>();
        return DatagramEndpointHandle{&box, id, self, family_of(box.get().local_address(id))};
      })
      .def("local_address", [](ReactorBox& box, uint64_t id) { return box.get().local_address(id); })
      .def("set_handler",
           [](py::object self, py::object handler, py::object on_error, bool views) {
             auto& box = self.cast<ReactorBox&>();
             auto dispatcher = std::make_unique<PythonDispatcher>(&box, self, handler, on_error, views);
             box.python = dispatcher.get();
             box.dispatcher = std::move(dispatcher);
             box.get().set_dispatcher(box.dispatcher.get());
           },
           py::arg("handler"), py::arg("on_error"), py::arg("views") = false,
           "views: on_message/on_messages get read-only memoryviews of the input buffer, not bytes copies")
      .def("set_builtin",
           [](ReactorBox& box, const std::string& name, std::optional<py::bytes> response) {
             if (name == "echo") box.dispatcher = std::make_unique<EchoDispatcher>();
             else if (name == "discard") box.dispatcher = std::make_unique<DiscardDispatcher>();
             else if (name == "fixed") box.dispatcher = std::make_unique<FixedResponseDispatcher>(std::string(response.value_or(py::bytes())));
             else throw py::value_error("builtin must be 'echo', 'discard' or 'fixed', not '" + name + "'");
             box.python = nullptr;
             box.get().set_dispatcher(box.dispatcher.get());
           },
           py::arg("name"), py::arg("response") = py::none())
      .def("run", [](ReactorBox& box, int interrupt_fd) {
        Reactor& reactor = box.get();
        reactor.set_interrupt_fd(interrupt_fd);
        ReleaseForLoop release(box);
        reactor.run();
      }, py::arg("interrupt_fd") = -1,
      "Runs until stop(). interrupt_fd: the read end of a signal.set_wakeup_fd() pipe, so that a "
      "signal never waits for the next event")
      .def("stop", [](ReactorBox& box) { if (box.reactor) box.reactor->stop(); })
      .def("close",
           [](ReactorBox& box) {
             if (box.reactor && box.reactor->running()) throw py::value_error("stop() the server before closing it");
             box.reactor.reset();  // closes every socket, the epoll fd and the waker
             box.python = nullptr;
             box.dispatcher.reset();  // drops the handler and every handle (with the GIL held)
           },
           "Closes every socket; the reactor cannot run again.")
      .def_property_readonly("closed", [](ReactorBox& box) { return !box.reactor; })
      .def_property_readonly("running", [](ReactorBox& box) { return box.reactor && box.reactor->running(); })
      .def("stats", [](ReactorBox& box) {
        ReactorStats s = box.get().stats();
        py::dict d;
        d["accepted"] = s.accepted;
        d["closed"] = s.closed;
        d["connections"] = s.connections;
        d["messages"] = s.messages;
        d["datagrams"] = s.datagrams;
        d["dropped_datagrams"] = s.dropped_datagrams;
        d["turns"] = s.turns;
        d["received_bytes"] = s.received_bytes;
        d["reads"] = s.reads;
        d["sent_bytes"] = s.sent_bytes;
        d["paused_reads"] = s.paused_reads;
        d["gro_segments"] = s.gro_segments;
        d["gso_datagrams"] = s.gso_datagrams;
        d["truncated_datagrams"] = s.truncated_datagrams;
        d["queued_bytes"] = s.queued_bytes;
        return d;
      });
}

}  // namespace socketeer::bindings
