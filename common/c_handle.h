// The one deleter for C handles held in std::unique_ptr: CFree<fn> calls fn, the C library's own
// free function for the handle, so an owner reads std::unique_ptr<EVP_PKEY, CFree<EVP_PKEY_free>>.
// Each library lists its owners in one header (openssl_handles.h, ssh_handles.h, curl_handles.h).
#pragma once

namespace castgate {

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* handle) const noexcept {
    Free(handle);
  }
};

}  // namespace castgate
