# Helpers shared by the CLI test scripts (sourced).

# png_size FILE: "WIDTHxHEIGHT" of a PNG file (from its IHDR chunk), or "not a PNG".
png_size() {
  /usr/bin/python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(24)
print("%dx%d" % struct.unpack(">II", b[16:24]) if b[:8] == b"\x89PNG\r\n\x1a\n" else "not a PNG")' "$1" 2>/dev/null || echo "not a PNG"
}
