#!/usr/bin/env bash
# Install what the tests need (Debian packages: PostgreSQL server, SoftHSM2, OpenSC, openssl,
# poppler-utils, xmlsec1, qpdf, Chromium and chromium-driver for the browser test, zbar-tools and
# fonts-freefont-ttf for the stamp tests, LibreOffice (headless, with python3-uno and NSS's certutil)
# to verify Office signatures) and run the whole test suite in parallel. Arguments go to pytest
# (e.g. -m "not slow", -k oauth, -n 4).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_common.sh
apt_install openssl softhsm2 opensc poppler-utils xmlsec1 qpdf postgresql chromium chromium-driver zbar-tools fonts-freefont-ttf \
    libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui python3-uno libnss3-tools \
    libpango-1.0-0 libpangoft2-1.0-0 curl jq
make_venv ".[test]"
set +e
# In parallel: one worker more than the cores (each worker starts its own service processes and
# waits on them part of the time: measured on 2 cores, 3 workers kept 1.85 cores busy and took
# 11m41s where 2 took 14m12s); tests of one module stay on one worker so module fixtures (PKIs,
# signed files) are built once.
# --no-loadscope-reorder: modules start in the order tests/conftest.py gives (the minute-long ones
# first), not by their number of tests, which put the one-test crash modules last, alone.
.venv/bin/python -m pytest -n "$(( $(nproc) + 1 ))" --dist loadscope --no-loadscope-reorder "$@"
status=$?
set -e
if [ $status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $status
