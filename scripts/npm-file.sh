#!/usr/bin/env bash
# Files from one exact npm package version, fetched from the npm registry (`npm pack`),
# checked against the tarball's SHA-256 and unpacked into a directory, once:
#   scripts/npm-file.sh <package> <version> <sha256> <directory> <path in package>...
# The first file already there means the work is done. Used for axe-core (the browser
# tests) and the AsyncAPI JSON Schema (tests/unit/test_contract_docs.py).
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: $0 <package> <version> <sha256> <directory> <path>..." >&2; exit 2; }
package=$1 version=$2 sha256=$3 directory=$4
shift 4
[ -s "$directory/$(basename "$1")" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "npm is needed to fetch $package $version" >&2; exit 1; }
echo "fetching $package $version from the npm registry (npm pack)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "$package@$version" | tail -n 1)
echo "$sha256  $work/$tarball" | sha256sum --check --quiet
tar -xzf "$work/$tarball" -C "$work" "${@/#/package/}"
mkdir -p "$directory"
for path in "$@"; do mv "$work/package/$path" "$directory/"; done
