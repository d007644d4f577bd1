// Messages lent to Python as read-only memoryviews of the reactor's input buffer, instead of a
// bytes copy each (socketeer.Server(views=True)).
//
// A view must never show bytes the reactor has since overwritten, however long the handler
// keeps it. Every view of a message reaches the memory through one LentBuffer (the exporter,
// `view.obj`), and every export of it holds a reference to it. After the handler returns, the
// lender looks at what it lent: if the memoryview, its managed buffer or the exporter has a
// reference beyond the lender's own, or the view a weak one, something kept the message (a
// list, a slice, a numpy array ...), and the exporter takes a share of the connection's input
// block (ReactorEvent::buffer): the block lives as long as the last view, and the connection
// reads on into a new block.
//
// Nothing kept is the common case, and then the memoryview itself is pointed at the next
// message: its buffer fields (CPython's PyMemoryViewObject, whose layout the headers we build
// against define) are rewritten while no one else can see it. So lending allocates nothing per
// message, where a bytes copy allocates and copies each time.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "socketeer/reactor.hpp"

namespace socketeer::bindings {

// Creates the exporter type; once, from init_server.
void init_lent_buffer();

class ViewLender {
 public:
#ifdef Py_GIL_DISABLED
  // Reusing a memoryview relies on its reference counts being exact while the GIL is held;
  // free-threaded CPython splits them between threads, so there is nothing exact to read.
  ViewLender() { throw std::runtime_error("Server(views=True) is not supported on free-threaded CPython"); }
#else
  ViewLender() = default;
#endif
  ViewLender(const ViewLender&) = delete;
  ViewLender& operator=(const ViewLender&) = delete;
  ~ViewLender();  // with the GIL held

  // A new reference to a read-only memoryview of a message event's payload; nullptr with a
  // Python error set if it could not be made.
  PyObject* lend(const ReactorEvent& event);
  // Once the references lend() returned since the last settle are dropped (the handlers have
  // returned): keeps the bytes of each view something else still holds (see keep_bytes), and
  // reuses the rest for later messages.
  void settle() noexcept;

 private:
  // A memoryview, its exporter, and the exporter's reference count with only the lender
  // and the view holding it.
  struct Slot {
    PyObject* view;
    PyObject* exporter;
    Py_ssize_t exporter_references;
  };
  struct Lent {
    Slot slot;
    const std::shared_ptr<char[]>* block;
    size_t block_size;
  };
  static bool held_elsewhere(const Slot& slot);
  static void keep_bytes(const Lent& lent) noexcept;
  std::vector<Lent> lent_;
  std::vector<Slot> spare_;
};

}  // namespace socketeer::bindings
