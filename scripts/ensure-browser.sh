#!/usr/bin/env bash
# What the browser tests (tests/browser/) need, installed only when missing:
#   * Debian's chromium, chromium-driver and fonts-noto-cjk (owners' pages are Chinese),
#     with apt-get — never a browser downloaded from anywhere else;
#   * axe-core (the accessibility checker injected into each page), the exact version
#     below from the npm registry (`npm pack`), checked against its SHA-256, unpacked to
#     .cache/axe-core/<version>/axe.min.js.
# `./scripts/ensure-browser.sh --axe` does only the second part (the tests call it so when
# they find no axe.min.js).
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_CORE_VERSION=4.14.1
AXE_CORE_SHA256=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
AXE_DIR=.cache/axe-core/$AXE_CORE_VERSION

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

ensure_browser() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  # (where there is no dpkg, the CJK fonts are the machine's own business)
  if command -v dpkg-query >/dev/null 2>&1 && ! installed fonts-noto-cjk; then
    missing+=(fonts-noto-cjk)
  fi
  # the gateway's PDF records (WeasyPrint) lay out with pango (chromium brings it too)
  if command -v dpkg-query >/dev/null 2>&1 && ! installed libpangoft2-1.0-0; then
    missing+=(libpango-1.0-0 libpangoft2-1.0-0)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser tests: ${missing[*]} missing and there is no apt-get here; install" \
         "Debian's chromium, chromium-driver and fonts-noto-cjk (or their equivalents)" >&2
    exit 1
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "browser tests: installing ${missing[*]} with apt-get (apt-get update first)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "browser tests: $(chromium --version 2>/dev/null), $(chromedriver --version | cut -d' ' -f1-2)"
}

ensure_axe() {
  scripts/npm-file.sh axe-core "$AXE_CORE_VERSION" "$AXE_CORE_SHA256" "$AXE_DIR" \
    axe.min.js LICENSE
}

case "${1:-}" in
  --axe) ensure_axe ;;
  "") ensure_browser; ensure_axe ;;
  *) echo "usage: $0 [--axe]" >&2; exit 2 ;;
esac
