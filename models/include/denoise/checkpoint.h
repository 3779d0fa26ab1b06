// Model checkpoints: one file holding the weights and JSON metadata (front end, model options,
// training summary, validation figures), so that a model carries everything needed to use it.
//
// Layout (little-endian):
//   8 bytes   magic "DNZMODEL"
//   u32       format version (kCheckpointFormatVersion)
//   u64       metadata length M, then M bytes of UTF-8 JSON
//   u64       payload length P, then P bytes: the tensors in the order metadata["tensors"] lists
//             them (name, dtype "float32" or "int64", shape), raw, row-major
//   u64       FNV-1a 64-bit hash of every byte before it
// Loading checks, in order: the magic (a foreign file), the lengths against the file size (a
// truncated file), the hash (a corrupt file), the format version and the metadata (strictly:
// unknown or missing keys), then every tensor's name and shape against the network the metadata
// describes (an incompatible file). Each failure is a denoise::Error naming the file and the
// reason. Files are written to a temporary name and renamed, so a crash never leaves half a model.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "denoise/front_end.h"
#include "denoise/unet.h"

namespace denoise {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

struct ModelMetadata {
  uint32_t format_version = kCheckpointFormatVersion;
  std::string project_version = DENOISE_VERSION;
  std::string architecture = "unet-mask";
  FrontEndConfig front_end;
  UNetOptions model;
  std::string created_utc;                               // ISO 8601, set when saved if empty
  nlohmann::json training = nlohmann::json::object();    // data summary, steps, options
  nlohmann::json validation = nlohmann::json::object();  // metrics of the saved weights
};
void to_json(nlohmann::json& j, const ModelMetadata& m);
void from_json(const nlohmann::json& j, ModelMetadata& m);  // strict

// A loaded model: metadata plus the network in eval mode on the CPU. Immutable once loaded;
// streams and files share it (forward under NoGradGuard does not modify it).
struct Model {
  ModelMetadata metadata;
  UNet net{nullptr};
};

// Builds a network for the metadata's front end and options (fresh weights).
UNet make_unet(const ModelMetadata& metadata);

// Writes `net`'s parameters and buffers (copied to the CPU) with `metadata` to `path`,
// atomically. Throws denoise::Error on I/O failure.
void save_checkpoint(const std::string& path, UNet& net, ModelMetadata metadata);

// Reads a checkpoint written by save_checkpoint. Throws denoise::Error naming `path` and why it
// cannot be used (see the header comment).
std::shared_ptr<Model> load_checkpoint(const std::string& path);

// Reads only the metadata (checks the magic, lengths and hash).
ModelMetadata read_checkpoint_metadata(const std::string& path);

}  // namespace denoise
