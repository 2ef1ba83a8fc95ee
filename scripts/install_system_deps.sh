#!/usr/bin/env bash
# Debian packages the headless renderer needs (EGL + Mesa's llvmpipe). Installs only what is missing.
set -euo pipefail
need=()
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || need+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so.0' || need+=(libegl-mesa0)
ls /usr/lib/*/dri/swrast_dri.so /usr/lib/*/dri/*_dri.so >/dev/null 2>&1 || need+=(libgl1-mesa-dri)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || need+=(libgl1)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages for headless rendering: ${need[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "error: missing ${need[*]} and no apt-get; install EGL + Mesa (llvmpipe) with your package manager" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
