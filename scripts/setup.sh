#!/usr/bin/env bash
# Installs booru-release and everything it needs on a fresh Debian machine (run as root).
#   bash scripts/setup.sh          # the package and its runtime tools
#   bash scripts/setup.sh --test   # also the test and benchmark tools
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(rsync zstd)
# to compile release/_native.c (the per-file read loop): compiler, Python and OpenSSL headers, xxhash.h,
# and liburing for reading small files through io_uring (release/_ring.c)
debs+=(gcc libc6-dev libssl-dev libxxhash-dev liburing-dev)
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || debs+=(python3-dev)
if [[ "${1:-}" == "--test" ]]; then
  # hashing anchors, then real BitTorrent parts: tracker, independent clients, torrent makers, netns
  debs+=(xxhash b3sum rhash hashdeep coreutils util-linux time)
  debs+=(opentracker transmission-cli aria2 mktorrent iproute2)
  debs+=(jq)  # select is checked against the jq pipeline users write
  debs+=(imagemagick parallel libvips-tools)  # derive 512px against the published script and vipsthumbnail
  # the seedbox clients the Ansible roles install on a box (tests run the roles with install off)
  debs+=(transmission-daemon qbittorrent-nox)
fi
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

extra=""
[[ "${1:-}" == "--test" ]] && extra="[test]"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".${extra}"
# pyenv only exposes new console scripts after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
