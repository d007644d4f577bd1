// _core.Framing and _core.StreamReader: whole messages from a byte stream, read in C++ with
// the GIL released; one Python call returns a whole batch of messages.
#include "bindings.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/stream_reader.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

py::bytes to_bytes(std::string_view view) { return py::bytes(view.data(), view.size()); }

// Runs a read with the GIL released; the view it returns is copied into bytes once, with it.
template <typename Read>
py::bytes read_view(Read&& read) {
  std::string_view view;
  {
    py::gil_scoped_release release;
    view = read();
  }
  return to_bytes(view);
}

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

  py::class_<StreamReader>(m, "StreamReader", "Buffered reads from a stream socket (see socketeer.Stream).")
      .def(py::init<size_t>(), py::arg("capacity") = 64 * 1024)
      .def_property_readonly("buffered", [](const StreamReader& r) { return to_bytes(r.buffered()); })
      .def_property_readonly("buffered_size", [](const StreamReader& r) { return r.buffered().size(); })
      .def_property_readonly("at_eof", &StreamReader::at_eof)
      .def("read_some", [](StreamReader& r, Socket& s, size_t max, TimeoutArg timeout) {
        return read_view([&] { return r.read_some(s, max, timeout.value); });
      }, py::arg("socket"), py::arg("max"), py::arg("timeout") = py::none())
      .def("read_exactly", [](StreamReader& r, Socket& s, size_t size, TimeoutArg timeout) {
        return read_view([&] { return r.read_exactly(s, size, timeout.value); });
      }, py::arg("socket"), py::arg("size"), py::arg("timeout") = py::none())
      .def("read_until", [](StreamReader& r, Socket& s, py::bytes delimiter, size_t max_size,
                            TimeoutArg timeout) {
        std::string wanted = delimiter;
        return read_view([&] { return r.read_until(s, wanted, max_size, timeout.value); });
      }, py::arg("socket"), py::arg("delimiter"), py::arg("max_size"), py::arg("timeout") = py::none())
      .def("read_frames", [](StreamReader& r, Socket& s, const Framing& framing, TimeoutArg timeout) {
        std::vector<std::string_view> views;
        {
          py::gil_scoped_release release;
          views = r.read_frames(s, framing, timeout.value);
        }
        py::list messages;
        for (auto view : views) messages.append(to_bytes(view));
        return messages;
      }, py::arg("socket"), py::arg("framing"), py::arg("timeout") = py::none());
}

}  // namespace socketeer::bindings
