#!/usr/bin/env bash
# Install remotesign into .venv and run it on its embedded default:
# SQLite + blobs in $REMOTESIGN_HOME (./var), software keys, built-in CA/TSA/OCSP, a demo relying party.
# Arguments go to `remotesign serve` (e.g. --host 0.0.0.0 --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
apt_install fonts-freefont-ttf  # visible PDF stamps: names in any European script
make_venv "."
exec .venv/bin/remotesign serve "$@"
