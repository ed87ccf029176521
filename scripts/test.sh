#!/usr/bin/env bash
# Install what the tests need (Debian packages: PostgreSQL server, SoftHSM2, OpenSC, openssl,
# poppler-utils, xmlsec1, qpdf, Chromium and chromium-driver for the browser test) and run the
# whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
apt_install openssl softhsm2 opensc poppler-utils xmlsec1 qpdf postgresql chromium chromium-driver
make_venv ".[test]"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ $status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $status
