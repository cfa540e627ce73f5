// Follows an SFTP (version 3) conversation in both directions and reports what happened to
// which files, without keeping any file data: WRITE and DATA payloads are skipped as they pass,
// and at most 64 KiB of any packet is held at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "asciicast/file_operation.h"

namespace castgate::asciicast {

class SftpMetadataParser {
 public:
  void from_client(std::string_view bytes, std::vector<FileOperation>& out);
  void from_server(std::string_view bytes, std::vector<FileOperation>& out);
  // The channel ended: handles never closed are reported as closed by the end of the session.
  void finish(std::vector<FileOperation>& out);
  // Non-empty once the stream is not SFTP (it must open with INIT and VERSION, then carry only
  // requests and responses); then nothing more is parsed.
  const std::string& error() const { return error_; }
  // The start of the packet each side is in the middle of (length and the part kept of its
  // body): recorded too when the stream turns out not to be SFTP.
  std::string pending_bytes(bool client) const;

 private:
  struct Framer {
    uint8_t length_bytes[4];
    int have_length = 0;
    uint32_t length = 0;    // of the current packet
    uint32_t consumed = 0;  // of its body
    std::string head;       // first bytes of the body
  };
  struct Request {
    uint8_t type = 0;
    std::string path, target_path, handle;
    uint32_t pflags = 0;
    std::optional<uint32_t> mode;
    uint64_t length = 0;  // WRITE data length
  };
  struct Handle {
    std::string path;
    std::string direction;
    std::optional<uint32_t> mode;
    uint64_t bytes_read = 0, bytes_written = 0;
    bool directory = false;
  };
  template <typename OnPacket>
  void frame(Framer& f, std::string_view bytes, OnPacket on_packet);
  void client_packet(std::string_view head, uint32_t length);
  void server_packet(std::string_view head, uint32_t length, std::vector<FileOperation>& out);
  void fail(std::string why);
  std::string type_problem(bool client, uint8_t type);
  FileOperation op(const char* action, const std::string& path) const;

  Framer client_, server_;
  std::unordered_map<uint32_t, Request> requests_;
  std::unordered_map<std::string, Handle> handles_;
  bool client_started_ = false, server_started_ = false;  // INIT and VERSION seen
  std::string error_;
};

const char* sftp_status_name(uint32_t code);

}  // namespace castgate::asciicast
