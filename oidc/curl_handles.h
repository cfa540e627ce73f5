// RAII owners for the libcurl handles castgate uses. No curl_*_cleanup or *_free call appears
// outside this file.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "common/c_handle.h"

namespace castgate::oidc::curl {

using Easy = std::unique_ptr<CURL, CFree<curl_easy_cleanup>>;
using Multi = std::unique_ptr<CURLM, CFree<curl_multi_cleanup>>;
using Slist = std::unique_ptr<curl_slist, CFree<curl_slist_free_all>>;
using Url = std::unique_ptr<CURLU, CFree<curl_url_cleanup>>;
// Strings libcurl allocated (curl_easy_escape, curl_url_get).
using Text = std::unique_ptr<char, CFree<curl_free>>;

}  // namespace castgate::oidc::curl
