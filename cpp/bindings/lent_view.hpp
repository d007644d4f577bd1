// Messages lent to Python as read-only memoryviews of the reactor's input buffer, instead of a
// bytes copy each (socketeer.Server(views=True)).
//
// A view must never show bytes the reactor has since overwritten, however long the handler
// keeps it. Every view of a message reaches the memory through one LentBuffer (the exporter,
// `view.obj`), which counts the buffers it exported. After the handler returns, the lender
// drops its own view; if the exporter still has exports or other references, something kept
// the message (a list, a slice, a numpy array ...), and the exporter takes a share of the
// connection's input block (ReactorEvent::buffer): the block lives as long as the last view,
// and the connection reads on into a new block. An exporter nothing kept is reused for a later
// message, so the common case allocates only the memoryview.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

#include "socketeer/reactor.hpp"

namespace socketeer::bindings {

// Creates the exporter type; once, from init_server.
void init_lent_buffer();

class ViewLender {
 public:
  ViewLender() = default;
  ViewLender(const ViewLender&) = delete;
  ViewLender& operator=(const ViewLender&) = delete;
  ~ViewLender();  // with the GIL held

  // A new reference to a read-only memoryview of a message event's payload; nullptr with a
  // Python error set if it could not be made.
  PyObject* lend(const ReactorEvent& event);
  // Once the lender's own references to the views lent since the last settle are gone: keeps
  // the input block of each view that something else still holds, and reuses the rest.
  void settle() noexcept;

 private:
  struct Lent {
    PyObject* exporter;
    const std::shared_ptr<char[]>* block;
  };
  std::vector<Lent> lent_;
  std::vector<PyObject*> spare_;
};

}  // namespace socketeer::bindings
