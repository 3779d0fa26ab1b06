// Strict JSON reading for typed configuration (front end, model options, loss, checkpoint
// metadata): a value must be an object holding exactly the expected keys, so that a typo or a
// field from another version is an error rather than a silently ignored default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "denoise/error.h"

namespace denoise {

// Throws denoise::Error "<what>: expected a JSON object", "<what>: unknown key 'k'" or
// "<what>: missing key 'k'" unless `j` is an object with the same keys as `known` (typically the
// JSON of a default-constructed value).
inline void require_same_keys(const nlohmann::json& j, const nlohmann::json& known,
                              const std::string& what) {
  if (!j.is_object()) throw Error(what + ": expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(what + ": unknown key '" + it.key() + "'");
  for (auto it = known.begin(); it != known.end(); ++it)
    if (!j.contains(it.key())) throw Error(what + ": missing key '" + it.key() + "'");
}

}  // namespace denoise
