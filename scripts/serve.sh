#!/usr/bin/env bash
# Install remotesign into .venv and run it on its embedded default:
# SQLite + blobs in $REMOTESIGN_HOME (./var), software keys, built-in CA/TSA/OCSP, a demo relying party.
# Arguments go to `remotesign serve` (e.g. --host 0.0.0.0 --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
# visible PDF stamps: names in any European script; the PDF validation report (WeasyPrint);
# curl and jq for the README's examples
apt_install fonts-freefont-ttf libpango-1.0-0 libpangoft2-1.0-0 curl jq
make_venv "."
# The demo has no mail server or SMS gateway: messages to signers (passcodes, codes) land in files.
if [ -z "${REMOTESIGN_SMTP_URL:-}" ]; then export REMOTESIGN_MAIL_DIR="${REMOTESIGN_MAIL_DIR:-${REMOTESIGN_HOME:-var}/outbox/mail}"; fi
if [ -z "${REMOTESIGN_SMS_GATEWAY_URL:-}" ]; then export REMOTESIGN_SMS_DIR="${REMOTESIGN_SMS_DIR:-${REMOTESIGN_HOME:-var}/outbox/sms}"; fi
exec .venv/bin/remotesign serve "$@"
