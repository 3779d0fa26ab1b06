// JSON text for files a user reads (evaluate --json, the training log, model metadata) when
// strings may hold file names. Linux file names are bytes, not necessarily UTF-8, while JSON text
// must be UTF-8 (nlohmann's dump() throws on anything else). Here each byte that is not part of a
// valid UTF-8 sequence is written as the four characters \xNN (NN: two lower-case hex digits),
// the convention of Python's errors="backslashreplace"; valid UTF-8 is left as it is. So
// "p1_\xff.wav" in a report names the file whose name holds the byte 0xFF there.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace denoise {

// `text` with every byte outside valid UTF-8 written as \xNN (see above).
std::string escape_invalid_utf8(std::string_view text);

// j.dump(indent) after escape_invalid_utf8 on every string value and object key: never throws
// for invalid UTF-8.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace denoise
