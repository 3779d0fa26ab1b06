# Helpers shared by the CLI test scripts (sourced).

# png_size FILE: "WIDTHxHEIGHT" of a PNG file (from its IHDR chunk), or "not a PNG".
png_size() {
  /usr/bin/python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(24)
print("%dx%d" % struct.unpack(">II", b[16:24]) if b[:8] == b"\x89PNG\r\n\x1a\n" else "not a PNG")' "$1" 2>/dev/null || echo "not a PNG"
}

# check_error_line NAME WHAT REASON-REGEX: stderr has exactly one "error:" line, it names WHAT
# and matches the reason (extended regex). Uses the script's ok/fail, $LOG/err and stderr_text.
check_error_line() {
  local n line
  n=$(grep -c 'error:' "$LOG/err")
  line=$(grep 'error:' "$LOG/err" | head -1)
  if [ "$n" -ne 1 ]; then fail "$1" "$n error lines: $(stderr_text)"
  elif [[ "$line" != *"$2"* ]]; then fail "$1" "error line does not name $2: $line"
  elif ! grep -qE -- "$3" <<<"$line"; then fail "$1" "error line has no reason /$3/: $line"
  else ok "$1"; fi
}
