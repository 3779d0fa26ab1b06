#include "denoise/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include "denoise/error.h"
#include "denoise/json_strict.h"
#include "denoise/json_text.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

constexpr char kMagic[8] = {'D', 'N', 'Z', 'M', 'O', 'D', 'E', 'L'};
// magic + version + metadata length + payload length + hash
constexpr size_t kFixedBytes = 8 + 4 + 8 + 8 + 8;
// Sanity limits of the length fields, far above any model this project writes (metadata of a
// few kB, tensors of a few MB): checked before any arithmetic or allocation.
constexpr uint64_t kMaxMetadataBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxPayloadBytes = uint64_t{1} << 30;

uint64_t fnv1a(const uint8_t* data, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 1099511628211ull;
  }
  return h;
}

template <typename T>
void put(std::vector<uint8_t>& out, T value) {
  // The project builds for little-endian machines only (x86-64, aarch64); the file is
  // little-endian.
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

template <typename T>
T get(const std::vector<uint8_t>& in, size_t offset) {
  T value;
  std::memcpy(&value, in.data() + offset, sizeof(T));
  return value;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Every named tensor of the network (parameters, then buffers), in registration order.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(UNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : net->named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : net->named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

void write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0)
    throw Error(path + ": cannot create a temporary file in " + dir.string() + ": " +
                std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      throw Error(path + ": cannot write the model: " + why);
    }
    done += static_cast<size_t>(w);
  }
  // Flushed to disk before the rename, so that a crash leaves either the old file or the new one.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    throw Error(path + ": cannot write the model: " + why);
  }
  ::chmod(temp.c_str(), 0644);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    throw Error(path + ": cannot rename the finished model into place: " + why);
  }
}

// The file's bytes after checking magic, lengths and hash; offsets of its parts.
struct Parsed {
  std::vector<uint8_t> bytes;
  uint32_t version = 0;
  nlohmann::json metadata;
  size_t payload_offset = 0;
  uint64_t payload_length = 0;
};

Parsed parse(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": model file not found");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a folder, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the model file: " + std::strerror(errno));
  Parsed p;
  p.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const auto& b = p.bytes;
  if (b.size() < 8 || std::memcmp(b.data(), kMagic, 8) != 0)
    throw Error(path + ": not a denoise model file (no DNZMODEL signature)");
  if (b.size() < kFixedBytes)
    throw Error(path + ": truncated model file (" + std::to_string(b.size()) + " bytes)");
  p.version = get<uint32_t>(b, 8);
  // A length field beyond what this format ever holds is damage, not a cut: say "corrupt"
  // (and never add it to an offset, which could wrap around). Within the limits, a file shorter
  // than its header declares was cut short.
  const uint64_t meta_len = get<uint64_t>(b, 12);
  if (meta_len > kMaxMetadataBytes)
    throw Error(path + ": corrupt model file (its metadata length field says " +
                std::to_string(meta_len) + " bytes; at most " +
                std::to_string(kMaxMetadataBytes) + ")");
  if (meta_len > b.size() - kFixedBytes)
    throw Error(path + ": truncated model file (" + std::to_string(b.size()) +
                " bytes, its metadata alone declares " + std::to_string(meta_len) + ")");
  p.payload_offset = 20 + meta_len + 8;
  p.payload_length = get<uint64_t>(b, 20 + meta_len);
  if (p.payload_length > kMaxPayloadBytes)
    throw Error(path + ": corrupt model file (its tensor data length field says " +
                std::to_string(p.payload_length) + " bytes; at most " +
                std::to_string(kMaxPayloadBytes) + ")");
  const uint64_t expected = p.payload_offset + p.payload_length + 8;
  if (b.size() < expected)
    throw Error(path + ": truncated model file (" + std::to_string(b.size()) + " of the " +
                std::to_string(expected) + " bytes its header declares)");
  if (b.size() > expected)
    throw Error(path + ": corrupt model file (" + std::to_string(b.size() - expected) +
                " unexpected bytes at the end)");
  const uint64_t stored = get<uint64_t>(b, expected - 8);
  if (fnv1a(b.data(), expected - 8) != stored)
    throw Error(path + ": corrupt model file (checksum mismatch)");
  if (p.version != kCheckpointFormatVersion)
    throw Error(path + ": model file format version " + std::to_string(p.version) +
                " is not supported (this build reads version " +
                std::to_string(kCheckpointFormatVersion) + "; a newer release wrote it?)");
  try {
    p.metadata = nlohmann::json::parse(b.begin() + 20, b.begin() + 20 + meta_len);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": corrupt model metadata: " + e.what());
  }
  return p;
}

ModelMetadata metadata_of(const std::string& path, const Parsed& p) {
  ModelMetadata m;
  try {
    nlohmann::json j = p.metadata;
    j.erase("tensors");
    m = j.get<ModelMetadata>();
  } catch (const std::exception& e) {
    throw Error(path + ": incompatible model metadata: " + e.what());
  }
  return m;
}

}  // namespace

void to_json(nlohmann::json& j, const ModelMetadata& m) {
  j = nlohmann::json{{"format_version", m.format_version},
                     {"project_version", m.project_version},
                     {"architecture", m.architecture},
                     {"front_end", m.front_end},
                     {"model", m.model},
                     {"created_utc", m.created_utc},
                     {"training", m.training},
                     {"validation", m.validation}};
}

void from_json(const nlohmann::json& j, ModelMetadata& m) {
  require_same_keys(j, ModelMetadata{}, "model metadata");
  try {
    j.at("format_version").get_to(m.format_version);
    j.at("project_version").get_to(m.project_version);
    j.at("architecture").get_to(m.architecture);
    m.front_end = j.at("front_end").get<FrontEndConfig>();
    m.model = j.at("model").get<UNetOptions>();
    j.at("created_utc").get_to(m.created_utc);
    m.training = j.at("training");
    m.validation = j.at("validation");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("model metadata: ") + e.what());
  }
  if (m.architecture != "unet-mask")
    throw Error("model metadata: unknown architecture '" + m.architecture + "'");
  m.front_end.validate();
  m.model.validate();
}

UNet make_unet(const ModelMetadata& metadata) {
  metadata.front_end.validate();
  return UNet(metadata.model, metadata.front_end.n_bins(), metadata.front_end.sample_rate_hz);
}

void save_checkpoint(const std::string& path, UNet& net, ModelMetadata metadata) {
  if (metadata.created_utc.empty()) metadata.created_utc = utc_now();
  metadata.format_version = kCheckpointFormatVersion;
  nlohmann::json meta = metadata;
  nlohmann::json table = nlohmann::json::array();
  std::vector<uint8_t> payload;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : named_tensors(net)) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    std::string dtype;
    if (t.scalar_type() == torch::kFloat)
      dtype = "float32";
    else if (t.scalar_type() == torch::kLong)
      dtype = "int64";
    else
      throw Error(path + ": cannot store tensor " + name + " of type " +
                  std::string(c10::toString(t.scalar_type())));
    table.push_back({{"name", name}, {"dtype", dtype}, {"shape", t.sizes().vec()}});
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    payload.insert(payload.end(), p, p + t.nbytes());
  }
  meta["tensors"] = table;
  const std::string text = dump_json(meta, 1);  // file names may not be UTF-8
  std::vector<uint8_t> bytes(kMagic, kMagic + 8);
  put<uint32_t>(bytes, kCheckpointFormatVersion);
  put<uint64_t>(bytes, text.size());
  bytes.insert(bytes.end(), text.begin(), text.end());
  put<uint64_t>(bytes, payload.size());
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  put<uint64_t>(bytes, fnv1a(bytes.data(), bytes.size()));
  write_atomically(path, bytes);
}

ModelMetadata read_checkpoint_metadata(const std::string& path) {
  return metadata_of(path, parse(path));
}

std::shared_ptr<Model> load_checkpoint(const std::string& path) {
  const Parsed p = parse(path);
  auto model = std::make_shared<Model>();
  model->metadata = metadata_of(path, p);
  try {
    model->net = make_unet(model->metadata);
  } catch (const Error& e) {
    throw Error(path + ": incompatible model: " + e.what());
  }
  // Match the stored tensors to the network's, by name, dtype and shape.
  std::map<std::string, nlohmann::json> stored;
  const nlohmann::json& table =
      p.metadata.contains("tensors") ? p.metadata.at("tensors") : nlohmann::json::array();
  if (!table.is_array()) throw Error(path + ": incompatible model: no tensor table");
  std::map<std::string, size_t> offsets;
  size_t offset = 0;
  try {
    for (const auto& entry : table) {
      const std::string name = entry.at("name").get<std::string>();
      const std::string dtype = entry.at("dtype").get<std::string>();
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      if (dtype != "float32" && dtype != "int64")
        throw Error(path + ": incompatible model: tensor '" + name + "' has unknown type '" +
                    dtype + "'");
      // Each factor is checked against the payload's size first, so the product cannot wrap.
      uint64_t count = 1;
      for (int64_t d : shape) {
        if (d < 0 || static_cast<uint64_t>(d) > kMaxPayloadBytes ||
            (d > 0 && count > kMaxPayloadBytes / static_cast<uint64_t>(d)))
          throw Error(path + ": corrupt model: tensor '" + name + "' has an impossible shape " +
                      c10::str(c10::IntArrayRef(shape)));
        count *= static_cast<uint64_t>(d);
      }
      const size_t size = static_cast<size_t>(count) * (dtype == "int64" ? 8 : 4);
      stored[name] = entry;
      offsets[name] = offset;
      offset += size;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": incompatible model: bad tensor table: " + e.what());
  }
  if (offset != p.payload_length)
    throw Error(path + ": incompatible model: the tensor table describes " +
                std::to_string(offset) + " bytes, the file holds " +
                std::to_string(p.payload_length));
  torch::NoGradGuard no_grad;
  const auto tensors = named_tensors(model->net);
  if (tensors.size() != stored.size())
    throw Error(path + ": incompatible model: " + std::to_string(stored.size()) +
                " tensors stored, the network has " + std::to_string(tensors.size()));
  for (const auto& [name, tensor] : tensors) {
    auto it = stored.find(name);
    if (it == stored.end())
      throw Error(path + ": incompatible model: tensor '" + name + "' is missing");
    const auto shape = it->second.at("shape").get<std::vector<int64_t>>();
    const std::string dtype = it->second.at("dtype").get<std::string>();
    const std::string want = tensor.scalar_type() == torch::kLong ? "int64" : "float32";
    if (shape != tensor.sizes().vec() || dtype != want)
      throw Error(path + ": incompatible model: tensor '" + name + "' is " + dtype + " " +
                  c10::str(c10::IntArrayRef(shape)) + ", the network expects " + want + " " +
                  c10::str(tensor.sizes()));
    std::memcpy(tensor.data_ptr(), p.bytes.data() + p.payload_offset + offsets[name],
                tensor.nbytes());
    if (dtype == "float32" && !torch::isfinite(tensor).all().item<bool>())
      throw Error(path + ": corrupt model: tensor '" + name + "' holds NaN or Inf");
  }
  model->net->eval();
  return model;
}

}  // namespace denoise
