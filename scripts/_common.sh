# Shared by serve.sh and test.sh: run apt-get as root (or through sudo), make the virtualenv.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    # Install the Debian packages named in $@ that are missing; one apt-get update at most.
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

venv_stamp() { echo ".venv/.installed-$( (cat pyproject.toml; echo "$1") | sha256sum | cut -c1-16)"; }

make_venv() {
    # .venv with the project installed (editable); $1 = pip extras spec, e.g. ".[test]".
    # pip runs only when pyproject.toml or the extras changed since the last install (a stamp in
    # .venv), so a restart is quick and works offline; the install is editable, code changes need none.
    local stamp with_tests
    stamp=$(venv_stamp "$1"); with_tests=$(venv_stamp ".[test]")
    if [ -x .venv/bin/python ] && { [ -f "$stamp" ] || { [ "$1" = "." ] && [ -f "$with_tests" ]; }; }; then
        return 0  # (the test extras include the plain install)
    fi
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e "$1"
    touch "$stamp"
}
