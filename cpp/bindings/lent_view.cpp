#include "lent_view.hpp"

#include <cstring>
#include <new>

namespace socketeer::bindings {
namespace {

constexpr size_t kMaxSpare = 256;  // idle slots kept for reuse (a batch needs one per message)
constexpr size_t kCopyOutFraction = 4;  // a kept message up to 1/4 of its read block is copied out

struct LentBuffer {
  PyObject_HEAD
  const char* data;
  Py_ssize_t size;
  std::shared_ptr<char[]> keep;  // the bytes, once a view outlived its handler
  bool copied;                   // ... copied out of the read block (else keep is that block)
};

PyTypeObject* lent_buffer_type = nullptr;

LentBuffer* as_lent(PyObject* object) { return reinterpret_cast<LentBuffer*>(object); }

// Read-only: a request for a writable buffer fails with BufferError, as for bytes. Each export
// holds a reference to the exporter (view.obj), which is how held_elsewhere() sees it.
int lent_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  LentBuffer* lent = as_lent(self);
  return PyBuffer_FillInfo(view, self, const_cast<char*>(lent->data), lent->size, 1, flags);
}

void lent_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  as_lent(self)->keep.~shared_ptr();
  PyObject_Free(self);
  Py_DECREF(type);  // instances of a heap type hold a reference to it
}

// Says what a kept view costs: its own copy, or a whole shared read block.
PyObject* lent_repr(PyObject* self) {
  LentBuffer* lent = as_lent(self);
  if (lent->copied) return PyUnicode_FromFormat("<socketeer message buffer, %zd bytes, copied>", lent->size);
  if (lent->keep) return PyUnicode_FromFormat("<socketeer message buffer, %zd bytes, sharing a read block>", lent->size);
  return PyUnicode_FromFormat("<socketeer message buffer, %zd bytes, lent>", lent->size);
}

PyObject* new_lent_buffer() {
  LentBuffer* lent = PyObject_New(LentBuffer, lent_buffer_type);
  if (!lent) return nullptr;
  new (&lent->keep) std::shared_ptr<char[]>();
  lent->copied = false;
  return reinterpret_cast<PyObject*>(lent);
}

}  // namespace

void init_lent_buffer() {
  static PyType_Slot slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(lent_dealloc)},
      {Py_tp_repr, reinterpret_cast<void*>(lent_repr)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(lent_getbuffer)},
      {Py_tp_doc, const_cast<char*>("The memory behind a message memoryview lent to a Server handler.")},
      {0, nullptr}};
  static PyType_Spec spec = {"socketeer._core.MessageBuffer", sizeof(LentBuffer), 0, Py_TPFLAGS_DEFAULT, slots};
  if (lent_buffer_type) return;
  lent_buffer_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  if (!lent_buffer_type) throw pybind11::error_already_set();
}

ViewLender::~ViewLender() {
  settle();
  for (const Slot& slot : spare_) {
    Py_DECREF(slot.view);
    Py_DECREF(slot.exporter);
  }
}

PyObject* ViewLender::lend(const ReactorEvent& event) {
  Slot slot;
  if (!spare_.empty()) {
    slot = spare_.back();
    spare_.pop_back();
  } else {
    slot.exporter = new_lent_buffer();
    if (!slot.exporter) return nullptr;
    slot.view = PyMemoryView_FromObject(slot.exporter);
    if (!slot.view) {
      Py_DECREF(slot.exporter);
      return nullptr;
    }
    slot.exporter_references = Py_REFCNT(slot.exporter);
  }
  // The exporter (for new exports: memoryview(view.obj)), the snapshot the managed buffer took
  // of it, and the view's own copy, whose shape[0] is the length of a 1-D byte view.
  auto* view = reinterpret_cast<PyMemoryViewObject*>(slot.view);
  auto* buffer = as_lent(slot.exporter);
  buffer->data = event.data.data();
  buffer->size = static_cast<Py_ssize_t>(event.data.size());
  view->mbuf->master.buf = const_cast<char*>(buffer->data);
  view->mbuf->master.len = buffer->size;
  view->view.buf = view->mbuf->master.buf;
  view->view.len = buffer->size;
  view->view.shape[0] = buffer->size;
  view->hash = -1;  // read-only views cache their hash
  lent_.push_back({slot, event.buffer, event.buffer_size});
  Py_INCREF(slot.view);
  return slot.view;
}

bool ViewLender::held_elsewhere(const Slot& slot) {
  auto* view = reinterpret_cast<PyMemoryViewObject*>(slot.view);
  // Besides the view itself: a weak reference to it, a slice (a new view of the same managed
  // buffer), and anything that holds the exporter: view.obj kept, a new export of it
  // (memoryview(view.obj)); a view released inside the handler (`with view:`) let go of it.
  return Py_REFCNT(slot.view) != 1 || view->weakreflist != nullptr || Py_REFCNT(view->mbuf) != 1 ||
         Py_REFCNT(slot.exporter) != slot.exporter_references;
}

// A view that outlived its handler keeps its bytes. By default it shares the connection's read
// block, which then lives as long as the view. But when nothing but the view object itself is
// held (no slice or cast of it, no export of it such as a numpy array, nobody holding its
// exporter), nothing else points into the block: a message small beside its block is then
// copied out and the view repointed at the copy, so a handler that keeps many small messages
// holds their bytes, not a whole read block (64 KiB by default) for each one.
void ViewLender::keep_bytes(const Lent& lent) noexcept {
  auto* view = reinterpret_cast<PyMemoryViewObject*>(lent.slot.view);
  LentBuffer* buffer = as_lent(lent.slot.exporter);
  bool only_the_view = Py_REFCNT(view->mbuf) == 1 && view->exports == 0 &&
                       Py_REFCNT(lent.slot.exporter) == lent.slot.exporter_references;
  auto size = static_cast<size_t>(buffer->size);
  if (only_the_view && size <= lent.block_size / kCopyOutFraction) {
    try {
      std::shared_ptr<char[]> copy(new char[size]);
      std::memcpy(copy.get(), buffer->data, size);
      buffer->data = copy.get();
      view->mbuf->master.buf = copy.get();
      view->view.buf = copy.get();
      buffer->keep = std::move(copy);
      buffer->copied = true;
      return;
    } catch (const std::bad_alloc&) {
      // no memory for a copy: share the block, as for views that cannot be moved
    }
  }
  buffer->keep = *lent.block;
}

void ViewLender::settle() noexcept {
  for (const Lent& lent : lent_) {
    bool held = held_elsewhere(lent.slot);
    if (!held && spare_.size() < kMaxSpare) {
      spare_.push_back(lent.slot);
      continue;
    }
    if (held) keep_bytes(lent);
    Py_DECREF(lent.slot.view);
    Py_DECREF(lent.slot.exporter);
  }
  lent_.clear();
}

}  // namespace socketeer::bindings
