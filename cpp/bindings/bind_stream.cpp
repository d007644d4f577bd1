// _core.Framing and _core.StreamReader: whole messages from a byte stream, split in C++.
//
// The reader's hot calls are vectorcall methods (see fast_method.hpp): read_frame and read_line
// (the sync Stream.messages()/lines(), one call per message) and take_frame and take_line (the
// asyncio Stream's). Every
// read first takes from the buffer with the GIL held, which does no I/O, reads no clock and
// ends as soon as the buffer answers; only a read that has to wait for bytes releases the GIL
// for the blocking loop.
#include "bindings.hpp"
#include "fast_method.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/stream_reader.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

// A fast method's max_size argument (the stdlib's "n" format, and never negative).
size_t max_size_arg(PyObject* value) {
  Py_ssize_t size = size_arg(value, 0);
  if (size < 0) throw py::value_error("max_size must be >= 0");
  return static_cast<size_t>(size);
}

py::bytes to_bytes(std::string_view view) { return py::bytes(view.data(), view.size()); }

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
    StreamReader& reader = *cpp_self<StreamReader>(self);
    Socket& socket = cpp_arg<Socket>(a.values[0], "read_frame", "socket");
    const Framing& framing = cpp_arg<Framing>(a.values[1], "read_frame", "framing");
    Timeout timeout = timeout_arg(a.values[2], "timeout");
    return take_else_read(
               reader, [&] { return reader.take_frame(framing); },
               [&] { return reader.read_frame(socket, framing, timeout); })
        .release()
        .ptr();
  });
}

PyObject* read_line(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("read_line", args, nargs, kwnames, {"socket", "max_size", "timeout"}, 2)) return nullptr;
    StreamReader& reader = *cpp_self<StreamReader>(self);
    Socket& socket = cpp_arg<Socket>(a.values[0], "read_line", "socket");
    size_t max_size = max_size_arg(a.values[1]);
    Timeout timeout = timeout_arg(a.values[2], "timeout");
    return take_else_read(
               reader, [&] { return reader.take_line(max_size); },
               [&] { return reader.read_line(socket, max_size, timeout); })
        .release()
        .ptr();
  });
}

PyObject* bytes_or_none(std::optional<std::string_view> view) {
  if (!view) Py_RETURN_NONE;
  return PyBytes_FromStringAndSize(view->data(), static_cast<Py_ssize_t>(view->size()));
}

PyObject* take_frame(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("take_frame", args, nargs, kwnames, {"framing"}, 1)) return nullptr;
    const Framing& framing = cpp_arg<Framing>(a.values[0], "take_frame", "framing");
    return bytes_or_none(cpp_self<StreamReader>(self)->take_frame(framing));
  });
}

PyObject* take_line(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("take_line", args, nargs, kwnames, {"max_size"}, 1)) return nullptr;
    return bytes_or_none(cpp_self<StreamReader>(self)->take_line(max_size_arg(a.values[0])));
  });
}

PyMethodDef reader_methods[] = {
    {"read_frame", fastcall(read_frame), METH_FASTCALL | METH_KEYWORDS,
     "read_frame(socket, framing, timeout=None) -> bytes | None: the next message, waiting (GIL released) only "
     "when none is buffered; None at a clean end of stream."},
    {"read_line", fastcall(read_line), METH_FASTCALL | METH_KEYWORDS,
     "read_line(socket, max_size, timeout=None) -> bytes | None: the next line without its \\n or \\r\\n (the "
     "rest, at end of stream), waiting only when none is buffered; None at a clean end of stream."},
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
      .def_static("raw", &Framing::raw, py::arg("max_size"))
      .def_static("delimited", [](py::bytes delimiter, size_t max_size) { return Framing::delimited(delimiter, max_size); },
                  py::arg("delimiter"), py::arg("max_size"))
      .def_static("length_prefixed", &Framing::length_prefixed, py::arg("prefix_size"), py::arg("big_endian"),
                  py::arg("max_size"))
      .def_property_readonly("kind", [](const Framing& f) {
        switch (f.kind()) {
          case Framing::Kind::raw: return "raw";
          case Framing::Kind::delimited: return "delimited";
          default: return "length_prefixed";
        }
      })
      .def_property_readonly("delimiter", [](const Framing& f) { return py::bytes(f.delimiter()); })
      .def_property_readonly("prefix_size", &Framing::prefix_size)
      .def_property_readonly("big_endian", &Framing::big_endian)
      .def_property_readonly("max_size", &Framing::max_size)
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
      }, py::arg("data"));

  py::class_<StreamReader> reader(m, "StreamReader",
                                  "Buffered reads from a stream socket (see socketeer.Stream and socketeer.aio.Stream).");
  reader.def(py::init<size_t>(), py::arg("capacity") = 64 * 1024)
      .def_property_readonly("buffered", [](const StreamReader& r) { return to_bytes(r.buffered()); })
      .def_property_readonly("buffered_size", [](const StreamReader& r) { return r.buffered().size(); })
      .def_property_readonly("capacity", &StreamReader::capacity)
      .def_property_readonly("eof", &StreamReader::eof, "The peer has closed its side (bytes may still be buffered).")
      .def_property_readonly("at_eof", &StreamReader::at_eof, "The peer has closed its side and every byte was taken.")
      // The buffer alone (no I/O, GIL held): bytes, or None when it does not hold the result yet.
      .def("take_some", [](StreamReader& r, size_t max) { return optional_bytes(r.take_some(max)); }, py::arg("max"))
      .def("take_exactly", [](StreamReader& r, size_t size) { return optional_bytes(r.take_exactly(size)); },
           py::arg("size"))
      .def("take_until", [](StreamReader& r, py::bytes delimiter, size_t max_size) {
        return optional_bytes(r.take_until(std::string_view(delimiter), max_size));
      }, py::arg("delimiter"), py::arg("max_size"))
      .def("fill_now", [](StreamReader& r, Socket& s) {
        ReleaseGil release;
        return r.fill_now(s);
      }, py::arg("socket"), "One receive that never waits: bytes read, 0 at end of stream, None if nothing is there.")
      // Blocking: from the buffer if it holds the result, else waiting with the GIL released.
      .def("read_some", [](StreamReader& r, Socket& s, size_t max, TimeoutArg timeout) {
        Timeout wait = timeout.value;
        return take_else_read(r, [&] { return r.take_some(max); },
                              [&] { return std::optional(r.read_some(s, max, wait)); });
      }, py::arg("socket"), py::arg("max"), py::arg("timeout") = py::none())
      .def("read_exactly", [](StreamReader& r, Socket& s, size_t size, TimeoutArg timeout) {
        Timeout wait = timeout.value;
        return take_else_read(r, [&] { return r.take_exactly(size); },
                              [&] { return std::optional(r.read_exactly(s, size, wait)); });
      }, py::arg("socket"), py::arg("size"), py::arg("timeout") = py::none())
      .def("read_until", [](StreamReader& r, Socket& s, py::bytes delimiter, size_t max_size,
                            TimeoutArg timeout) {
        std::string_view wanted(delimiter);
        Timeout wait = timeout.value;
        return take_else_read(r, [&] { return r.take_until(wanted, max_size); },
                              [&] { return std::optional(r.read_until(s, wanted, max_size, wait)); });
      }, py::arg("socket"), py::arg("delimiter"), py::arg("max_size"), py::arg("timeout") = py::none());
  add_fast_methods(reader, reader_methods);
}

}  // namespace socketeer::bindings
