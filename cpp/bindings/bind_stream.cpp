// _core.Framing and _core.StreamReader: whole messages from a byte stream, split in C++.
//
// The reader's hot calls are vectorcall methods (see fast_method.hpp): read_frame and read_line
// (the sync Stream.messages()/lines(), one call per message), and the asyncio Stream's: the
// takes (take_some, take_exactly, take_until, take_frame, take_line) and fill_now, which its
// read-ahead calls once per readable event. Every
// read first takes from the buffer with the GIL held, which does no I/O, reads no clock and
// ends as soon as the buffer answers; only a read that has to wait for bytes releases the GIL
// for the blocking loop.
//
// One reader at a time. While a read waits with the GIL released, its thread fills the
// reader's buffer (a vector that can grow and move). Another thread calling into the same
// reader meanwhile would take from, fill or move that buffer under it: a data race, bytes
// handed to the wrong caller, or a crash. So the Python object holds a SharedReader, whose
// StreamReader is reachable only through use(): a guard that marks it busy for the whole call
// (the bytes it hands out are built before the mark is cleared) and raises RuntimeError
// "<operation>: another thread is already reading this stream" in any call that finds it
// busy, as the asyncio Stream refuses a second reading task. The flag is read and written only
// with the GIL held, so a plain bool does: no atomics, two stores per call.
#include "bindings.hpp"
#include "fast_method.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/stream_reader.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

// A fast method's size argument (the stdlib's "n" format, and never negative); name says which
// in the error.
size_t non_negative_arg(PyObject* value, const char* name) {
  Py_ssize_t size = size_arg(value, 0);
  if (size < 0) throw py::value_error(std::string(name) + " must be >= 0");
  return static_cast<size_t>(size);
}

size_t max_size_arg(PyObject* value) { return non_negative_arg(value, "max_size"); }

py::bytes to_bytes(std::string_view view) { return py::bytes(view.data(), view.size()); }

class SharedReader {
 public:
  explicit SharedReader(size_t capacity) : reader_(capacity) {}

  // The reader for one call, marked busy until the guard ends. operation names the call in the
  // error (the Stream method it serves, where there is one).
  class Use {
   public:
    Use(SharedReader& owner, const char* operation) : owner_(owner) {
      if (owner.busy_) [[unlikely]] {
        PyErr_Format(PyExc_RuntimeError, "%s: another thread is already reading this stream", operation);
        throw py::error_already_set();
      }
      owner.busy_ = true;
    }
    ~Use() { owner_.busy_ = false; }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    StreamReader& operator*() const { return owner_.reader_; }
    StreamReader* operator->() const { return &owner_.reader_; }

   private:
    SharedReader& owner_;
  };

  Use use(const char* operation) { return Use(*this, operation); }

 private:
  StreamReader reader_;
  bool busy_ = false;  // only with the GIL held
};

py::object optional_bytes(std::optional<std::string_view> view) {
  return view ? py::object(to_bytes(*view)) : py::none();
}

// take() from the buffer with the GIL held; only when it needs more bytes (and the stream has
// not ended) read() waits for them with the GIL released. The view is copied into bytes at
// once (None for "no message: the stream ended").
template <typename Take, typename Read>
py::object take_else_read(StreamReader& reader, Take&& take, Read&& read) {
  std::optional<std::string_view> view = take();
  if (!view && !reader.eof()) {
    ReleaseGil release;
    view = read();
  }
  return optional_bytes(view);
}

PyObject* read_frame(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("read_frame", args, nargs, kwnames, {"socket", "framing", "timeout"}, 2)) return nullptr;
    Socket& socket = cpp_arg<Socket>(a.values[0], "read_frame", "socket");
    const Framing& framing = cpp_arg<Framing>(a.values[1], "read_frame", "framing");
    Timeout timeout = timeout_arg(a.values[2], "timeout");
    auto reader = cpp_self<SharedReader>(self)->use("messages");
    return take_else_read(
               *reader, [&] { return reader->take_frame(framing); },
               [&] { return reader->read_frame(socket, framing, timeout); })
        .release()
        .ptr();
  });
}

PyObject* read_line(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("read_line", args, nargs, kwnames, {"socket", "max_size", "timeout"}, 2)) return nullptr;
    Socket& socket = cpp_arg<Socket>(a.values[0], "read_line", "socket");
    size_t max_size = max_size_arg(a.values[1]);
    Timeout timeout = timeout_arg(a.values[2], "timeout");
    auto reader = cpp_self<SharedReader>(self)->use("lines");
    return take_else_read(
               *reader, [&] { return reader->take_line(max_size); },
               [&] { return reader->read_line(socket, max_size, timeout); })
        .release()
        .ptr();
  });
}

PyObject* bytes_or_none(std::optional<std::string_view> view) {
  if (!view) Py_RETURN_NONE;
  return PyBytes_FromStringAndSize(view->data(), static_cast<Py_ssize_t>(view->size()));
}

// A take with one size argument (keyword ``keyword``; ``size_name`` in the ValueError): take(reader,
// size) from the buffer alone, as bytes or None.
template <typename Take>
PyObject* take_sized(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* function,
                     const char* keyword, const char* size_name, const char* operation, Take&& take) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse(function, args, nargs, kwnames, {keyword}, 1)) return nullptr;
    size_t size = non_negative_arg(a.values[0], size_name);
    auto reader = cpp_self<SharedReader>(self)->use(operation);
    return bytes_or_none(take(*reader, size));
  });
}

PyObject* take_some(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return take_sized(self, args, nargs, kwnames, "take_some", "max", "max_size", "recv",
                    [](StreamReader& reader, size_t max) { return reader.take_some(max); });
}

PyObject* take_exactly(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return take_sized(self, args, nargs, kwnames, "take_exactly", "size", "size", "recv_exactly",
                    [](StreamReader& reader, size_t size) { return reader.take_exactly(size); });
}

PyObject* take_until(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("take_until", args, nargs, kwnames, {"delimiter", "max_size"}, 2)) return nullptr;
    if (!PyBytes_Check(a.values[0])) {
      PyErr_Format(PyExc_TypeError, "take_until() argument 'delimiter' must be bytes, not %.200s",
                   Py_TYPE(a.values[0])->tp_name);
      return nullptr;
    }
    std::string_view delimiter(PyBytes_AS_STRING(a.values[0]), static_cast<size_t>(PyBytes_GET_SIZE(a.values[0])));
    size_t max_size = max_size_arg(a.values[1]);
    auto reader = cpp_self<SharedReader>(self)->use("recv_until");
    return bytes_or_none(reader->take_until(delimiter, max_size));
  });
}

// One receive that never waits (MSG_DONTWAIT), so the GIL stays held (see ReleaseGil).
PyObject* fill_now(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("fill_now", args, nargs, kwnames, {"socket"}, 1)) return nullptr;
    Socket& socket = cpp_arg<Socket>(a.values[0], "fill_now", "socket");
    auto reader = cpp_self<SharedReader>(self)->use("fill_now");
    std::optional<size_t> received = reader->fill_now(socket);
    if (!received) Py_RETURN_NONE;
    return PyLong_FromSize_t(*received);
  });
}

// A name looked up on the stream object by on_readable, interned once.
PyObject* interned(PyObject*& slot, const char* name) {
  if (!slot) {
    slot = PyUnicode_InternFromString(name);
    if (!slot) throw py::error_already_set();
  }
  return slot;
}

// stream.<name>(*args) for on_readable; a Python exception propagates.
void call_method(PyObject* target, PyObject* name, PyObject* argument = nullptr) {
  PyObject* result = argument ? PyObject_CallMethodOneArg(target, name, argument) : PyObject_CallMethodNoArgs(target, name);
  if (!result) throw py::error_already_set();
  Py_DECREF(result);
}

// The asyncio Stream's reader callback, registered with the loop as
// add_reader(fd, reader.on_readable, socket, stream): the read-ahead as one native call, no
// Python frame per readable event (the loop calls it as it calls any callback, so it works on
// any loop). One receive (fill_now); nothing there: done. Else the task waiting in
// stream._read_waiter (a future), if any, is woken with set_result(None). stream._stop_reading()
// ends the read-ahead at end of stream, at an error (the OSError is kept in stream._read_error
// for the next read that needs bytes, as if that read had met it), and when the buffer holds its
// capacity with no task waiting for more.
PyObject* on_readable(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static PyObject *waiter_name, *error_name, *stop_name, *done_name, *set_result_name;
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("on_readable", args, nargs, kwnames, {"socket", "stream"}, 2)) return nullptr;
    Socket& socket = cpp_arg<Socket>(a.values[0], "on_readable", "socket");
    PyObject* stream = a.values[1];
    std::optional<size_t> received;
    bool full = false;
    {
      auto reader = cpp_self<SharedReader>(self)->use("fill_now");
      try {
        received = reader->fill_now(socket);  // MSG_DONTWAIT: the GIL stays held, as in fill_now
      } catch (const py::error_already_set&) {
        throw;
      } catch (...) {  // the receive's error as the OSError the translator makes of it, kept for the next read
        py::detail::try_translate_exceptions();
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        py::object error = py::reinterpret_steal<py::object>(value);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        if (!error) throw std::logic_error("on_readable: the receive failed without an error");
        if (PyObject_SetAttr(stream, interned(error_name, "_read_error"), error.ptr()) < 0) throw py::error_already_set();
        received = 0;
      }
      full = reader->buffered().size() >= reader->capacity();
    }
    if (!received) Py_RETURN_NONE;  // nothing there after all
    py::object waiter = py::reinterpret_steal<py::object>(PyObject_GetAttr(stream, interned(waiter_name, "_read_waiter")));
    if (!waiter) throw py::error_already_set();
    bool waiting = false;
    if (!waiter.is_none()) {
      py::object done = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(waiter.ptr(), interned(done_name, "done")));
      if (!done) throw py::error_already_set();
      int is_done = PyObject_IsTrue(done.ptr());
      if (is_done < 0) throw py::error_already_set();
      waiting = !is_done;
    }
    if (waiting ? *received == 0 : (*received == 0 || full)) call_method(stream, interned(stop_name, "_stop_reading"));
    if (waiting) call_method(waiter.ptr(), interned(set_result_name, "set_result"), Py_None);
    Py_RETURN_NONE;
  });
}

PyObject* take_frame(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("take_frame", args, nargs, kwnames, {"framing"}, 1)) return nullptr;
    const Framing& framing = cpp_arg<Framing>(a.values[0], "take_frame", "framing");
    auto reader = cpp_self<SharedReader>(self)->use("messages");
    return bytes_or_none(reader->take_frame(framing));
  });
}

PyObject* take_line(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return take_sized(self, args, nargs, kwnames, "take_line", "max_size", "max_size", "lines",
                    [](StreamReader& reader, size_t max_size) { return reader.take_line(max_size); });
}

PyMethodDef reader_methods[] = {
    {"read_frame", fastcall(read_frame), METH_FASTCALL | METH_KEYWORDS,
     "read_frame(socket, framing, timeout=None) -> bytes | None: the next message, waiting (GIL released) only "
     "when none is buffered; None at a clean end of stream."},
    {"read_line", fastcall(read_line), METH_FASTCALL | METH_KEYWORDS,
     "read_line(socket, max_size, timeout=None) -> bytes | None: the next line without its \\n or \\r\\n (the "
     "rest, at end of stream), waiting only when none is buffered; None at a clean end of stream."},
    {"take_some", fastcall(take_some), METH_FASTCALL | METH_KEYWORDS,
     "take_some(max) -> bytes | None: up to max buffered bytes (b'' at end of stream); None when nothing is "
     "buffered yet. No I/O."},
    {"take_exactly", fastcall(take_exactly), METH_FASTCALL | METH_KEYWORDS,
     "take_exactly(size) -> bytes | None: exactly size bytes if buffered (None: fill, then ask again); "
     "IncompleteReadError at end of stream. No I/O."},
    {"take_until", fastcall(take_until), METH_FASTCALL | METH_KEYWORDS,
     "take_until(delimiter, max_size) -> bytes | None: the bytes up to and including delimiter if buffered "
     "(None: fill, then ask again); MessageTooLarge past max_size. No I/O."},
    {"fill_now", fastcall(fill_now), METH_FASTCALL | METH_KEYWORDS,
     "fill_now(socket) -> int | None: one receive that never waits: bytes read, 0 at end of stream, None if "
     "nothing is there."},
    {"on_readable", fastcall(on_readable), METH_FASTCALL | METH_KEYWORDS,
     "on_readable(socket, stream) -> None: socketeer.aio.Stream's reader callback (its read-ahead): one "
     "receive, then stream._read_waiter.set_result(None) if a task waits; stream._stop_reading() at end of "
     "stream, at an error (kept in stream._read_error) and when the buffer is full with no task waiting."},
    {"take_frame", fastcall(take_frame), METH_FASTCALL | METH_KEYWORDS,
     "take_frame(framing) -> bytes | None: the next message if the buffer holds all of it (None: fill, then "
     "ask again; at_eof tells a clean end). No I/O."},
    {"take_line", fastcall(take_line), METH_FASTCALL | METH_KEYWORDS,
     "take_line(max_size) -> bytes | None: read_line's answer from the buffer alone (None: fill, then ask "
     "again; at_eof tells a clean end). No I/O."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void init_stream(py::module_& m) {
  py::class_<Framing>(m, "Framing", "How messages are delimited in a byte stream (see socketeer.framing).")
      .def_static("raw", &Framing::raw, py::arg("max_size"),
                  "No framing: each read is a message of up to max_size bytes. Use socketeer.framing.raw().")
      .def_static("delimited", [](py::bytes delimiter, size_t max_size) { return Framing::delimited(delimiter, max_size); },
                  py::arg("delimiter"), py::arg("max_size"),
                  "Messages ending with delimiter, at most max_size bytes. Use socketeer.framing.delimited().")
      .def_static("length_prefixed", &Framing::length_prefixed, py::arg("prefix_size"), py::arg("big_endian"),
                  py::arg("max_size"),
                  "Messages after a prefix_size-byte length. Use socketeer.framing.length_prefixed().")
      .def_property_readonly("kind", [](const Framing& f) {
        switch (f.kind()) {
          case Framing::Kind::raw: return "raw";
          case Framing::Kind::delimited: return "delimited";
          default: return "length_prefixed";
        }
      }, "\"raw\", \"delimited\" or \"length_prefixed\".")
      .def_property_readonly("delimiter", [](const Framing& f) { return py::bytes(f.delimiter()); },
                             "The delimiter of delimited framing (b\"\" otherwise).")
      .def_property_readonly("prefix_size", &Framing::prefix_size, "The length prefix's size in bytes: 1, 2, 4 or 8 (0: none).")
      .def_property_readonly("big_endian", &Framing::big_endian, "Whether the length prefix is big-endian (network order).")
      .def_property_readonly("max_size", &Framing::max_size, "The largest message accepted, in bytes.")
      .def("encode", [](const Framing& f, const ReadBuffer& message) {
        return py::bytes(f.encode(std::string_view(message.data(), message.size())));
      }, py::arg("message"), "The bytes that carry one message on the wire.")
      .def("split", [](const Framing& f, const ReadBuffer& data) {
        // Splits complete messages off the front of data: (messages, bytes consumed).
        std::string_view rest(data.data(), data.size());
        py::list messages;
        size_t consumed = 0;
        try {
          while (auto frame = f.next(rest)) {
            messages.append(to_bytes(rest.substr(frame->header, frame->payload)));
            rest.remove_prefix(frame->total());
            consumed += frame->total();
          }
        } catch (const FrameTooLarge&) {
          if (consumed == 0) throw;  // else: the messages before it; the next split raises
        }
        return py::make_tuple(messages, consumed);
      }, py::arg("data"),
      "Splits the complete messages off the front of data: (messages, bytes consumed). Raises\n"
      "MessageTooLarge if the first message exceeds max_size.");

  // Every method reaches the reader through use() (see the top of this file); operations are
  // named as the Stream methods they serve, where there is one.
  py::class_<SharedReader> reader(m, "StreamReader",
                                  "Buffered reads from a stream socket (see socketeer.Stream and socketeer.aio.Stream).");
  reader.def(py::init<size_t>(), py::arg("capacity") = 64 * 1024)
      .def_property_readonly("buffered", [](SharedReader& r) { return to_bytes(r.use("buffered")->buffered()); })
      .def_property_readonly("buffered_size", [](SharedReader& r) { return r.use("buffered_size")->buffered().size(); })
      .def_property_readonly("capacity", [](SharedReader& r) { return r.use("capacity")->capacity(); })
      .def_property_readonly("eof", [](SharedReader& r) { return r.use("eof")->eof(); },
                             "The peer has closed its side (bytes may still be buffered).")
      .def_property_readonly("at_eof", [](SharedReader& r) { return r.use("at_eof")->at_eof(); },
                             "The peer has closed its side and every byte was taken.")
      // The buffer alone (take_*) and fill_now are fast methods (reader_methods above).
      // Blocking: from the buffer if it holds the result, else waiting with the GIL released.
      .def("read_some", [](SharedReader& r, Socket& s, size_t max, TimeoutArg timeout) {
        Timeout wait = timeout.value;
        auto reader = r.use("recv");
        return take_else_read(*reader, [&] { return reader->take_some(max); },
                              [&] { return std::optional(reader->read_some(s, max, wait)); });
      }, py::arg("socket"), py::arg("max"), py::arg("timeout") = py::none())
      .def("read_exactly", [](SharedReader& r, Socket& s, size_t size, TimeoutArg timeout) {
        Timeout wait = timeout.value;
        auto reader = r.use("recv_exactly");
        return take_else_read(*reader, [&] { return reader->take_exactly(size); },
                              [&] { return std::optional(reader->read_exactly(s, size, wait)); });
      }, py::arg("socket"), py::arg("size"), py::arg("timeout") = py::none())
      .def("read_until", [](SharedReader& r, Socket& s, py::bytes delimiter, size_t max_size,
                            TimeoutArg timeout) {
        std::string_view wanted(delimiter);
        Timeout wait = timeout.value;
        auto reader = r.use("recv_until");
        return take_else_read(*reader, [&] { return reader->take_until(wanted, max_size); },
                              [&] { return std::optional(reader->read_until(s, wanted, max_size, wait)); });
      }, py::arg("socket"), py::arg("delimiter"), py::arg("max_size"), py::arg("timeout") = py::none());
  add_fast_methods(reader, reader_methods);
}

}  // namespace socketeer::bindings
