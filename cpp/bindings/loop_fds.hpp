// The loop core's one fd -> callbacks table: the reader and writer Handle registered for each
// fd (socketeer.aio.Loop's add_reader/add_writer), indexed by fd. It is the only place that maps
// an fd to a Python object, so that it can become the Poller registration's user token once the
// Poller carries one (issue 14's "Shape") without touching the run loop.
#pragma once

#include <Python.h>

#include <vector>

namespace socketeer::bindings {

class FdCallbacks {
 public:
  struct Entry {
    PyObject* reader = nullptr;  // strong references to Handles
    PyObject* writer = nullptr;
    bool empty() const { return !reader && !writer; }
  };

  // nullptr when fd has neither a reader nor a writer.
  Entry* find(int fd) {
    if (fd < 0 || static_cast<size_t>(fd) >= entries_.size()) return nullptr;
    Entry* entry = &entries_[fd];
    return entry->empty() ? nullptr : entry;
  }
  Entry& at(int fd) {
    if (static_cast<size_t>(fd) >= entries_.size()) entries_.resize(static_cast<size_t>(fd) + 1);
    return entries_[fd];
  }
  template <typename Each>
  void for_each(Each each) {  // each(fd, entry) for every fd with a callback
    for (size_t fd = 0; fd < entries_.size(); ++fd)
      if (!entries_[fd].empty()) each(static_cast<int>(fd), entries_[fd]);
  }

 private:
  std::vector<Entry> entries_;
};

}  // namespace socketeer::bindings
