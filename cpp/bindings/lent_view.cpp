#include "lent_view.hpp"

#include <new>
#include <string>

namespace socketeer::bindings {
namespace {

constexpr size_t kMaxSpare = 256;  // exporters kept for reuse (one per message of a batch)

struct LentBuffer {
  PyObject_HEAD
  const char* data;
  Py_ssize_t size;
  Py_ssize_t exports;           // buffers handed out and not yet released
  std::shared_ptr<char[]> keep;  // the input block, once a view outlived its handler
};

PyTypeObject* lent_buffer_type = nullptr;

LentBuffer* as_lent(PyObject* object) { return reinterpret_cast<LentBuffer*>(object); }

int lent_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  LentBuffer* lent = as_lent(self);
  // readonly: a request for a writable buffer fails with BufferError, as for bytes.
  if (PyBuffer_FillInfo(view, self, const_cast<char*>(lent->data), lent->size, 1, flags) < 0) return -1;
  ++lent->exports;
  return 0;
}

void lent_releasebuffer(PyObject* self, Py_buffer*) { --as_lent(self)->exports; }

void lent_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  as_lent(self)->keep.~shared_ptr();
  PyObject_Free(self);
  Py_DECREF(type);  // instances of a heap type hold a reference to it
}

PyObject* lent_repr(PyObject* self) {
  return PyUnicode_FromFormat("<socketeer message buffer, %zd bytes>", as_lent(self)->size);
}

PyObject* new_lent_buffer() {
  LentBuffer* lent = PyObject_New(LentBuffer, lent_buffer_type);
  if (!lent) return nullptr;
  new (&lent->keep) std::shared_ptr<char[]>();
  lent->exports = 0;
  return reinterpret_cast<PyObject*>(lent);
}

}  // namespace

void init_lent_buffer() {
  static PyType_Slot slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(lent_dealloc)},
      {Py_tp_repr, reinterpret_cast<void*>(lent_repr)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(lent_getbuffer)},
      {Py_bf_releasebuffer, reinterpret_cast<void*>(lent_releasebuffer)},
      {Py_tp_doc, const_cast<char*>("The memory behind a message memoryview lent to a Server handler.")},
      {0, nullptr}};
  static PyType_Spec spec = {"socketeer._core.MessageBuffer", sizeof(LentBuffer), 0, Py_TPFLAGS_DEFAULT, slots};
  if (lent_buffer_type) return;
  lent_buffer_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  if (!lent_buffer_type) throw pybind11::error_already_set();
}

ViewLender::~ViewLender() {
  settle();
  for (PyObject* exporter : spare_) Py_DECREF(exporter);
}

PyObject* ViewLender::lend(const ReactorEvent& event) {
  PyObject* exporter;
  if (spare_.empty()) {
    exporter = new_lent_buffer();
    if (!exporter) return nullptr;
  } else {
    exporter = spare_.back();
    spare_.pop_back();
  }
  as_lent(exporter)->data = event.data.data();
  as_lent(exporter)->size = static_cast<Py_ssize_t>(event.data.size());
  lent_.push_back({exporter, event.buffer});  // settle() decides its fate, even if this fails
  return PyMemoryView_FromObject(exporter);
}

void ViewLender::settle() noexcept {
  for (const Lent& lent : lent_) {
    LentBuffer* buffer = as_lent(lent.exporter);
    if (Py_REFCNT(lent.exporter) == 1 && buffer->exports == 0) {
      if (spare_.size() < kMaxSpare) {
        spare_.push_back(lent.exporter);
        continue;
      }
    } else {
      buffer->keep = *lent.block;  // someone holds a view (or the exporter): keep the bytes
    }
    Py_DECREF(lent.exporter);
  }
  lent_.clear();
}

}  // namespace socketeer::bindings
