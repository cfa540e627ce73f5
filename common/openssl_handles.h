// RAII owners for the OpenSSL handles castgate uses. No *_free call appears outside this file.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <memory>

#include "common/c_handle.h"

namespace castgate::ossl {

// OPENSSL_free is a macro (it passes the caller's file and line); this is it as a function.
inline void openssl_free(void* p) noexcept {
  OPENSSL_free(p);
}

using Pkey = std::unique_ptr<EVP_PKEY, CFree<EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, CFree<EVP_PKEY_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, CFree<EVP_MD_CTX_free>>;
using Bio = std::unique_ptr<BIO, CFree<BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, CFree<BN_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, CFree<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, CFree<OSSL_PARAM_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, CFree<ECDSA_SIG_free>>;
// What OpenSSL allocated for an i2d_* encoding.
using Bytes = std::unique_ptr<unsigned char, CFree<openssl_free>>;

}  // namespace castgate::ossl
