#!/usr/bin/env bash
# The GPU check: prints ONE JSON object on stdout (progress on stderr) within 8 minutes.
#   bash gpu-check.sh [--dry-run]
# In the GPU kit (npm run gpu-kit) it unpacks payload.tar.xz into $RLHF_GPU_KIT_DIR (default
# $TMPDIR/rlhf-lens-gpu-kit) and runs the kit's Node on the bundled check, with the kit's Vulkan and EGL
# loaders. In the repository it runs the system Node on out/gpu-check/gpuCheck.js
# (node scripts/gpuKit.mjs --bundle-only out/gpu-check). --dry-run: small shapes, the software adapter.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# The whole check, unpacking included, stays inside 8 minutes; the Node side has its own deadline inside this.
hard_limit_s=460

fail() {
  printf '{"check":"rlhf-lens gpu-check","error":%s}\n' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')"
  exit 1
}

if [ -f "$here/payload.tar.xz" ]; then
  root=${RLHF_GPU_KIT_DIR:-${TMPDIR:-/tmp}/rlhf-lens-gpu-kit}
  if [ ! -f "$root/.unpacked" ] || [ "$here/payload.tar.xz" -nt "$root/.unpacked" ]; then
    rm -rf "$root" && mkdir -p "$root" || fail "cannot create $root"
    if command -v xz >/dev/null 2>&1; then
      tar -xJf "$here/payload.tar.xz" -C "$root" || fail "tar -xJf payload.tar.xz failed"
    else
      # No xz binary: Python's tarfile reads .xz (lzma is in its standard library).
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$here/payload.tar.xz" "$root" || fail "unpacking payload.tar.xz with python3 failed"
    fi
    touch "$root/.unpacked"
  fi
  node="$root/bin/node"
  script="$root/app/gpuCheck.js"
  export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  node=${NODE:-node}
  script="$(dirname "$here")/out/gpu-check/gpuCheck.js"
  [ -f "$script" ] || fail "$script is missing: run node scripts/gpuKit.mjs --bundle-only out/gpu-check"
fi

# Dawn's OpenGL ES backend wants a surfaceless EGL and a writable runtime folder.
export EGL_PLATFORM=surfaceless
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d) && export XDG_RUNTIME_DIR
fi
# The NVIDIA driver's files where a container's driver mount puts them (outside the loaders' search paths).
nvidia=/usr/local/nvidia
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  icd=$(ls "$nvidia"/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json \
    2>/dev/null | head -n 1)
  [ -n "$icd" ] && export VK_DRIVER_FILES="$icd"
fi
if [ -d "$nvidia/share/glvnd/egl_vendor.d" ] && [ -z "${__EGL_VENDOR_LIBRARY_DIRS:-}" ]; then
  export __EGL_VENDOR_LIBRARY_DIRS="$nvidia/share/glvnd/egl_vendor.d:/usr/share/glvnd/egl_vendor.d"
fi
for dir in "$nvidia/lib64" "$nvidia/lib"; do
  [ -d "$dir" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
done

timeout -s KILL "$hard_limit_s" "$node" "$script" "$@"
status=$?
[ "$status" -eq 137 ] && fail "the check passed its hard limit of $hard_limit_s s"
exit "$status"
