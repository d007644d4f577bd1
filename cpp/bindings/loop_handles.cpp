// _core.Handle and _core.TimerHandle (see loop_handles.hpp): GC-tracked C objects with the
// stdlib Handle's attributes and methods. Their repr and the error report of a callback that
// raises are the stdlib's, built with asyncio.format_helpers as asyncio.Handle builds them.

#include "loop_handles.hpp"

#include <structmember.h>

namespace socketeer::bindings {

PyTypeObject* handle_type = nullptr;
PyTypeObject* timer_handle_type = nullptr;

namespace {

HandleObject* self_of(PyObject* self) { return as_handle(self); }

// asyncio.format_helpers._format_callback_source(callback, args): the stdlib's own formatting,
// so reprs and error messages read exactly as the stock loop's.
PyObject* format_callback_source(PyObject* callback, PyObject* args) {
  static PyObject* format = nullptr;
  if (!format) {
    PyObject* module = PyImport_ImportModule("asyncio.format_helpers");
    if (!module) return nullptr;
    format = PyObject_GetAttrString(module, "_format_callback_source");
    Py_DECREF(module);
    if (!format) return nullptr;
  }
  return PyObject_CallFunctionObjArgs(format, callback, args, nullptr);
}

int traverse(PyObject* self, visitproc visit, void* arg) {
  HandleObject* h = self_of(self);
  Py_VISIT(h->callback);
  Py_VISIT(h->args);
  Py_VISIT(h->context);
  Py_VISIT(h->loop);
  Py_VISIT(h->repr);
  Py_VISIT(h->source_traceback);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int clear(PyObject* self) {
  HandleObject* h = self_of(self);
  Py_CLEAR(h->callback);
  Py_CLEAR(h->args);
  Py_CLEAR(h->context);
  Py_CLEAR(h->loop);
  Py_CLEAR(h->repr);
  Py_CLEAR(h->source_traceback);
  return 0;
}

// Freed handles are kept for reuse (as CPython keeps floats and contexts): a loop turn frees
// about as many as the next one makes. Only touched with the GIL held.
constexpr int kFreeListSize = 256;
PyObject* free_list[kFreeListSize];
int free_count = 0;

void dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self_of(self)->weakrefs) PyObject_ClearWeakRefs(self);
  clear(self);
  if (free_count < kFreeListSize && is_our_handle(self)) free_list[free_count++] = self;  // not a subclass's
  else PyObject_GC_Del(self);
  Py_DECREF(type);  // PyObject_Init took a reference to the heap type
}

PyObject* repr_info(PyObject* self, PyObject* = nullptr) {
  HandleObject* h = self_of(self);
  PyObject* info = PyList_New(0);
  PyObject* name = PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(self)), "__name__");
  if (!info || !name || PyList_Append(info, name) < 0) goto fail;
  Py_CLEAR(name);
  if (h->cancelled) {
    PyObject* word = PyUnicode_FromString("cancelled");
    int appended = word ? PyList_Append(info, word) : -1;
    Py_XDECREF(word);
    if (appended < 0) goto fail;
  }
  if (h->callback && h->callback != Py_None) {
    PyObject* source = format_callback_source(h->callback, h->args ? h->args : Py_None);
    int appended = source ? PyList_Append(info, source) : -1;
    Py_XDECREF(source);
    if (appended < 0) goto fail;
  }
  if (h->source_traceback && PyObject_IsTrue(h->source_traceback) == 1) {
    PyObject* frame = PySequence_GetItem(h->source_traceback, -1);
    PyObject* file = frame ? PySequence_GetItem(frame, 0) : nullptr;
    PyObject* line = frame ? PySequence_GetItem(frame, 1) : nullptr;
    PyObject* text = file && line ? PyUnicode_FromFormat("created at %S:%S", file, line) : nullptr;
    int appended = text ? PyList_Append(info, text) : -1;
    Py_XDECREF(frame);
    Py_XDECREF(file);
    Py_XDECREF(line);
    Py_XDECREF(text);
    if (appended < 0) goto fail;
  }
  if (Py_IS_TYPE(self, timer_handle_type)) {
    PyObject* when = PyFloat_FromDouble(h->when);
    PyObject* text = when ? PyUnicode_FromFormat("when=%R", when) : nullptr;
    int inserted = text ? PyList_Insert(info, h->cancelled ? 2 : 1, text) : -1;
    Py_XDECREF(when);
    Py_XDECREF(text);
    if (inserted < 0) goto fail;
  }
  return info;
fail:
  Py_XDECREF(info);
  Py_XDECREF(name);
  return nullptr;
}

PyObject* repr(PyObject* self) {
  HandleObject* h = self_of(self);
  if (h->repr && h->repr != Py_None) return Py_NewRef(h->repr);
  PyObject* info = repr_info(self);
  if (!info) return nullptr;
  PyObject* space = PyUnicode_FromString(" ");
  PyObject* joined = space ? PyUnicode_Join(space, info) : nullptr;
  PyObject* text = joined ? PyUnicode_FromFormat("<%U>", joined) : nullptr;
  Py_DECREF(info);
  Py_XDECREF(space);
  Py_XDECREF(joined);
  return text;
}

PyObject* cancel(PyObject* self, PyObject*) {
  HandleObject* h = self_of(self);
  if (h->cancelled) Py_RETURN_NONE;
  static PyObject* timer_cancelled_name = PyUnicode_InternFromString("_timer_handle_cancelled");
  static PyObject* get_debug_name = PyUnicode_InternFromString("get_debug");
  if (h->scheduled) {  // TimerHandle: the loop counts cancelled timers still in its heap
    PyObject* done = PyObject_CallMethodOneArg(h->loop, timer_cancelled_name, self);
    if (!done) return nullptr;
    Py_DECREF(done);
  }
  h->cancelled = true;
  PyObject* debug = PyObject_CallMethodNoArgs(h->loop, get_debug_name);
  int is_debug = debug ? PyObject_IsTrue(debug) : -1;
  Py_XDECREF(debug);
  if (is_debug < 0) return nullptr;
  if (is_debug) {  // keep the callback's description for "Executing <Handle...> took 2.5 seconds"
    PyObject* text = repr(self);
    if (!text) return nullptr;
    Py_XSETREF(h->repr, text);
  }
  Py_XSETREF(h->callback, Py_NewRef(Py_None));
  Py_XSETREF(h->args, Py_NewRef(Py_None));
  Py_RETURN_NONE;
}

PyObject* cancelled(PyObject* self, PyObject*) { return PyBool_FromLong(self_of(self)->cancelled); }
PyObject* get_context(PyObject* self, PyObject*) { return Py_NewRef(self_of(self)->context); }
PyObject* when(PyObject* self, PyObject*) { return PyFloat_FromDouble(self_of(self)->when); }
PyObject* run_method(PyObject* self, PyObject*) {
  if (run_handle(self_of(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

// The stdlib's report of a callback that raised: loop.call_exception_handler({...}).
int report(HandleObject* h) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (traceback) PyException_SetTraceback(value, traceback);
  Py_XDECREF(type);
  Py_XDECREF(traceback);
  PyObject* source = format_callback_source(h->callback, h->args);
  PyObject* message = source ? PyUnicode_FromFormat("Exception in callback %U", source) : nullptr;
  PyObject* context = message ? PyDict_New() : nullptr;
  int ok = context && PyDict_SetItemString(context, "message", message) == 0 &&
           PyDict_SetItemString(context, "exception", value) == 0 &&
           PyDict_SetItemString(context, "handle", reinterpret_cast<PyObject*>(h)) == 0;
  if (ok && h->source_traceback && PyObject_IsTrue(h->source_traceback) == 1)
    ok = PyDict_SetItemString(context, "source_traceback", h->source_traceback) == 0;
  PyObject* done = ok ? PyObject_CallMethod(h->loop, "call_exception_handler", "O", context) : nullptr;
  Py_XDECREF(value);
  Py_XDECREF(source);
  Py_XDECREF(message);
  Py_XDECREF(context);
  if (!done) return -1;
  Py_DECREF(done);
  return 0;
}

PyMethodDef methods[] = {
    {"cancel", cancel, METH_NOARGS, "Cancels the call (no effect once it ran or was cancelled)."},
    {"cancelled", cancelled, METH_NOARGS, "Whether cancel() was called."},
    {"get_context", get_context, METH_NOARGS, "The contextvars.Context the callback runs in."},
    {"_run", run_method, METH_NOARGS, "Runs the callback as the loop does (errors to the exception handler)."},
    {"_repr_info", repr_info, METH_NOARGS, "The words of repr(), as asyncio.Handle._repr_info()."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef timer_methods[] = {
    {"when", when, METH_NOARGS, "The scheduled time, in loop.time()'s clock."}, {nullptr, nullptr, 0, nullptr}};

template <PyObject* HandleObject::*Field>
PyObject* get_object(PyObject* self, void*) {
  PyObject* value = self_of(self)->*Field;
  return Py_NewRef(value ? value : Py_None);
}

template <PyObject* HandleObject::*Field>
int set_object(PyObject* self, PyObject* value, void*) {
  Py_XSETREF(self_of(self)->*Field, Py_NewRef(value ? value : Py_None));
  return 0;
}

PyObject* get_cancelled(PyObject* self, void*) { return PyBool_FromLong(self_of(self)->cancelled); }
PyObject* get_when(PyObject* self, void*) { return PyFloat_FromDouble(self_of(self)->when); }
PyObject* get_scheduled(PyObject* self, void*) { return PyBool_FromLong(self_of(self)->scheduled); }

PyGetSetDef getset[] = {
    {"_callback", get_object<&HandleObject::callback>, nullptr, nullptr, nullptr},
    {"_args", get_object<&HandleObject::args>, nullptr, nullptr, nullptr},
    {"_context", get_object<&HandleObject::context>, nullptr, nullptr, nullptr},
    {"_loop", get_object<&HandleObject::loop>, nullptr, nullptr, nullptr},
    {"_cancelled", get_cancelled, nullptr, nullptr, nullptr},
    {"_repr", get_object<&HandleObject::repr>, set_object<&HandleObject::repr>, nullptr, nullptr},
    {"_source_traceback", get_object<&HandleObject::source_traceback>, set_object<&HandleObject::source_traceback>,
     nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef timer_getset[] = {{"_when", get_when, nullptr, nullptr, nullptr},
                              {"_scheduled", get_scheduled, nullptr, nullptr, nullptr},
                              {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMemberDef members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HandleObject, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

// TimerHandles order by when and compare equal as the stdlib's do (when, callback, args, cancelled).
PyObject* timer_compare(PyObject* self, PyObject* other, int op) {
  if (!PyObject_TypeCheck(other, timer_handle_type)) Py_RETURN_NOTIMPLEMENTED;
  HandleObject *a = self_of(self), *b = self_of(other);
  auto equal = [&]() -> int {
    if (a->when != b->when || a->cancelled != b->cancelled) return 0;
    int same = PyObject_RichCompareBool(a->callback, b->callback, Py_EQ);
    return same == 1 ? PyObject_RichCompareBool(a->args, b->args, Py_EQ) : same;
  };
  int result;
  switch (op) {
    case Py_LT: result = a->when < b->when; break;
    case Py_GT: result = a->when > b->when; break;
    case Py_LE: result = a->when < b->when ? 1 : equal(); break;
    case Py_GE: result = a->when > b->when ? 1 : equal(); break;
    case Py_EQ: result = equal(); break;
    default: result = equal(); result = result < 0 ? -1 : !result; break;
  }
  if (result < 0) return nullptr;
  return PyBool_FromLong(result);
}

Py_hash_t timer_hash(PyObject* self) {
  PyObject* when = PyFloat_FromDouble(self_of(self)->when);
  Py_hash_t hash = when ? PyObject_Hash(when) : -1;
  Py_XDECREF(when);
  return hash;
}

PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(clear)},
    {Py_tp_repr, reinterpret_cast<void*>(repr)},
    {Py_tp_methods, methods},
    {Py_tp_getset, getset},
    {Py_tp_members, members},
    {Py_tp_doc, const_cast<char*>("A callback scheduled on socketeer.aio.Loop (asyncio.Handle's API).")},
    {0, nullptr}};

PyType_Slot timer_slots[] = {
    {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(clear)},
    {Py_tp_methods, timer_methods},
    {Py_tp_getset, timer_getset},
    {Py_tp_richcompare, reinterpret_cast<void*>(timer_compare)},
    {Py_tp_hash, reinterpret_cast<void*>(timer_hash)},
    {Py_tp_doc, const_cast<char*>("A timed callback on socketeer.aio.Loop (asyncio.TimerHandle's API).")},
    {0, nullptr}};

PyType_Spec handle_spec = {"socketeer._core.Handle", sizeof(HandleObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                           handle_slots};
PyType_Spec timer_spec = {"socketeer._core.TimerHandle", sizeof(HandleObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, timer_slots};

}  // namespace

HandleObject* new_handle(PyTypeObject* type, PyObject* callback, PyObject* args, PyObject* context, PyObject* loop) {
  if (!context) context = PyContext_CopyCurrent();
  HandleObject* h = nullptr;
  if (context && free_count) h = as_handle(PyObject_Init(free_list[--free_count], type));  // same size
  else if (context) h = PyObject_GC_New(HandleObject, type);
  if (!h) {
    Py_XDECREF(args);
    Py_XDECREF(context);
    return nullptr;
  }
  h->callback = Py_NewRef(callback);
  h->args = args;
  h->context = context;
  h->loop = Py_NewRef(loop);
  h->repr = nullptr;
  h->source_traceback = nullptr;
  h->weakrefs = nullptr;
  h->when = 0;
  h->cancelled = false;
  h->scheduled = false;
  PyObject_GC_Track(h);
  return h;
}

int run_handle(HandleObject* h) {
  if (h->cancelled) return 0;  // _run() of a cancelled handle: nothing to call
  PyObject* result = nullptr;
  if (PyContext_Enter(h->context) == 0) {
    Py_ssize_t nargs = PyTuple_GET_SIZE(h->args);
    result = nargs ? PyObject_Vectorcall(h->callback, &PyTuple_GET_ITEM(h->args, 0), nargs, nullptr)
                   : PyObject_CallNoArgs(h->callback);
    if (PyContext_Exit(h->context) < 0) Py_CLEAR(result);
  }
  if (result) {
    Py_DECREF(result);
    return 0;
  }
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return -1;
  Py_INCREF(h);  // the exception handler may drop the loop's last reference
  int reported = report(h);
  Py_DECREF(h);
  return reported;
}

int run_any_handle(PyObject* handle) {
  if (is_our_handle(handle)) return run_handle(as_handle(handle));
  PyObject* done = PyObject_CallMethod(handle, "_run", nullptr);
  Py_XDECREF(done);
  return done ? 0 : -1;
}

int cancel_handle(PyObject* handle) {
  PyObject* done = is_our_handle(handle) ? cancel(handle, nullptr) : PyObject_CallMethod(handle, "cancel", nullptr);
  Py_XDECREF(done);
  return done ? 0 : -1;
}

int handle_cancelled(PyObject* handle) {
  if (is_our_handle(handle)) return as_handle(handle)->cancelled;
  PyObject* flag = PyObject_GetAttrString(handle, "_cancelled");
  int cancelled = flag ? PyObject_IsTrue(flag) : -1;
  Py_XDECREF(flag);
  return cancelled;
}

void init_loop_handles(pybind11::module_& m) {
  handle_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&handle_spec));
  if (!handle_type) throw pybind11::error_already_set();
  timer_handle_type = reinterpret_cast<PyTypeObject*>(
      PyType_FromSpecWithBases(&timer_spec, reinterpret_cast<PyObject*>(handle_type)));
  if (!timer_handle_type) throw pybind11::error_already_set();
  m.attr("Handle") = pybind11::handle(reinterpret_cast<PyObject*>(handle_type));
  m.attr("TimerHandle") = pybind11::handle(reinterpret_cast<PyObject*>(timer_handle_type));
}

}  // namespace socketeer::bindings
