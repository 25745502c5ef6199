// A library loaded with dlopen, closed on every way out, its symbols looked up by name: how the
// agent reaches NVML without a build- or link-time dependency on the NVIDIA driver.
#ifndef MOECAP_AGENT_COMPUTE_DYNAMIC_LIBRARY_H_
#define MOECAP_AGENT_COMPUTE_DYNAMIC_LIBRARY_H_

#include <dlfcn.h>

namespace moecap {

class DynamicLibrary {
 public:
  // Takes ownership of a dlopen handle (null: an empty library whose look-ups fail).
  explicit DynamicLibrary(void* handle) : handle_(handle) {}
  ~DynamicLibrary() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  template <typename Fn>
  bool Get(const char* symbol, Fn* fn) const {
    *fn = handle_ != nullptr ? reinterpret_cast<Fn>(dlsym(handle_, symbol)) : nullptr;
    return *fn != nullptr;
  }

 private:
  void* handle_;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_DYNAMIC_LIBRARY_H_
