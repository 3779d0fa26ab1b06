#!/usr/bin/env bash
# Gathers what building and running `train` needs, apart from LibTorch itself, into one folder to
# carry to a GPU machine that has a CUDA PyTorch (pip or conda) but no Debian package registry:
# the sources, the headers and shared libraries of libsndfile, libsamplerate, FFTW and cairo
# (with every library they load that is not part of the C runtime), the header-only nlohmann/json
# and CLI11 with their CMake configurations, pkg-config files pointing into the folder, optional
# training data, and a script that builds and trains there.
#
#   scripts/gpu-bundle.sh OUT_DIR [DATA_DIR ...]
#       DATA_DIR: speech or noise folders to carry (copied to OUT_DIR/data/<name>)
#   then on the GPU machine:
#   [PYTHON=python3] OUT_DIR/run.sh [--steps N] [--clean DIR ...] [--noise DIR ...] [train options ...]
#
# run.sh configures against `python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'`
# (without PortAudio, the LADSPA plugin and the tests), builds `train` with all cores, trains
# on the GPU (--device cuda; by default 300 steps of the default recipe on OUT_DIR/data, split
# into speech and noise by folder name: a folder under data/noise* is noise) and prints the
# throughput, GPU memory and the share of time the GPU was busy (nvidia-smi, sampled every
# 0.5 s). Building takes 2-4 minutes on 16 cores, the training run about as long.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/gpu-bundle.sh OUT_DIR [DATA_DIR ...]}"
shift
[ -e "$out" ] && { echo "gpu-bundle: $out exists; give a new folder" >&2; exit 1; }
command -v pkg-config >/dev/null || { echo "gpu-bundle: needs pkg-config (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$out"/{src,include,lib/pkgconfig,lib/cmake,data}
out="$(cd "$out" && pwd)"

# Sources: the committed tree (what is not committed is not carried).
git -C "$repo" archive HEAD | tar -x -C "$out/src"

# Headers.
inc=/usr/include
cp -a "$inc/sndfile.h" "$inc/sndfile.hh" "$inc/samplerate.h" "$inc/fftw3.h" "$out/include/"
cp -a "$inc/cairo" "$inc/nlohmann" "$inc/CLI" "$out/include/"
# cairo.h includes these through its pkg-config cflags on Debian.
for d in freetype2 libpng16 pixman-1; do [ -d "$inc/$d" ] && cp -a "$inc/$d" "$out/include/"; done

# Shared libraries: the four and everything they load, except the C runtime that every Linux
# machine has (and that must come from the target machine itself).
runtime='^(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux[^ ]*)\.so'
libs=()
for name in sndfile samplerate fftw3f cairo; do
  dir="$(pkg-config --variable=libdir "$name")"
  libs+=("$(readlink -f "$dir/lib$name.so")")
done
declare -A seen=()
queue=("${libs[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  lib="${queue[0]}"
  queue=("${queue[@]:1}")
  [ -n "${seen[$lib]:-}" ] && continue
  seen[$lib]=1
  while read -r dep; do
    [ -n "$dep" ] && [ -z "${seen[$dep]:-}" ] && queue+=("$dep")
  done < <(ldd "$lib" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r p; do
    base="$(basename "$p")"
    [[ "$base" =~ $runtime ]] || readlink -f "$p"
  done)
done
for lib in "${!seen[@]}"; do
  cp -a "$lib" "$out/lib/"
  # Every name a library is found by: its soname and, for the four, the plain .so for linking.
  soname="$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')"
  [ -n "$soname" ] && [ "$soname" != "$(basename "$lib")" ] && ln -sf "$(basename "$lib")" "$out/lib/$soname"
done
for name in sndfile samplerate fftw3f cairo; do
  ln -sf "$(basename "$(readlink -f "$(pkg-config --variable=libdir "$name")/lib$name.so")")" \
    "$out/lib/lib$name.so"
  # A pkg-config file without private dependencies (the libraries are all shared and beside it).
  version="$(pkg-config --modversion "$name")"
  cat >"$out/lib/pkgconfig/$name.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: $name
Description: $name, carried by denoise's gpu-bundle.sh
Version: $version
Libs: -L\${libdir} -l$name
Cflags: -I\${includedir} -I\${includedir}/cairo
EOF
done
# CMake package configurations of the header-only libraries, with their include path moved.
for pkg in nlohmann_json CLI11; do
  src="$(dirname "$(find /usr/lib /usr/share -name "${pkg}Config.cmake" -print -quit 2>/dev/null)")"
  [ -d "$src" ] || { echo "gpu-bundle: ${pkg}Config.cmake not found (scripts/install-deps.sh)" >&2; exit 1; }
  cp -a "$src" "$out/lib/cmake/$pkg"
  sed -i "s#/usr/include#\${CMAKE_CURRENT_LIST_DIR}/../../../include#g" "$out/lib/cmake/$pkg"/*.cmake
done

for d in "$@"; do
  [ -d "$d" ] || { echo "gpu-bundle: $d is not a folder" >&2; exit 1; }
  case "$d" in */noise*|*/noise) dest="$out/data/noise_$(basename "$d")" ;; *) dest="$out/data/$(basename "$d")" ;; esac
  cp -a "$d" "$dest"
done

cat >"$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# Builds train against this machine's CUDA PyTorch and the libraries in this folder, then trains
# on the GPU and reports throughput, GPU memory and busy share. See gpu-bundle.sh in the sources.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
torch_prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
"$py" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "GPU available:", torch.cuda.is_available())'
export PKG_CONFIG_PATH="$here/lib/pkgconfig" PKG_CONFIG_LIBDIR="$here/lib/pkgconfig"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
build="$here/build"
t0=$SECONDS
cmake -S "$here/src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDENOISE_BUILD_TESTS=OFF \
  -DDENOISE_WITH_PORTAUDIO=OFF -DDENOISE_WITH_LADSPA=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$here/lib/cmake" >"$here/configure.log" 2>&1 ||
  { tail -30 "$here/configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target train >"$here/build.log" 2>&1 || { tail -30 "$here/build.log"; exit 1; }
echo "built train in $((SECONDS - t0)) s"
args=("$@")
if ! printf '%s\n' "${args[@]}" | grep -qE '^--(clean|data)$'; then
  speech=() noise=()
  for d in "$here"/data/*/; do
    case "$(basename "$d")" in noise*) noise+=("$d") ;; *) speech+=("$d") ;; esac
  done
  [ ${#speech[@]} -gt 0 ] || { echo "run.sh: no speech under $here/data; give --clean DIR" >&2; exit 1; }
  args=(--clean "${speech[@]}" ${noise[@]+--noise "${noise[@]}"} "${args[@]}")
fi
printf '%s\n' "${args[@]}" | grep -qE '^--steps$' || args+=(--steps 300)
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
  >"$here/gpu.csv" 2>/dev/null &
smi=$!
trap 'kill $smi 2>/dev/null || true' EXIT
"$build/bin/train" -q --device cuda --config "$here/src/models/recipes/banded_gru.json" \
  --val-every 100000 -o "$here/gpu-run.dnz" "${args[@]}" | tee "$here/train.txt"
kill $smi 2>/dev/null || true
awk -F', ' 'NF == 2 {n++; busy += $1; if ($2 > mem) mem = $2}
  END {if (n) printf "GPU: busy %.0f %% of %d samples (0.5 s apart), peak memory %d MiB\n", busy / n, n, mem}' \
  "$here/gpu.csv"
EOF
chmod +x "$out/run.sh"
du -sh "$out" | awk '{print "gpu-bundle: " $2 " holds " $1}'
