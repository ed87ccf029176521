#!/bin/sh
# Make the secrets of deploy/compose.yaml, once, before the first `docker compose up`:
#   secrets/master.key     the instance's master key: base64 of 32 random bytes (what
#                          REMOTESIGN_MASTER_KEY_FILE holds); every node mounts this one file
#   secrets/s3_secret_key  the S3 secret the nodes sign with (REMOTESIGN_S3_SECRET_KEY_FILE)
#   secrets/s3.json        SeaweedFS's identities: the same access key and secret
#   secrets/postgres_password  the database password (PostgreSQL's POSTGRES_PASSWORD_FILE)
#   secrets/database_url   the nodes' database URL with that password (REMOTESIGN_DATABASE_URL_FILE)
#   .env                   S3_ACCESS_KEY, PUBLIC_URL for compose's ${...}
# An existing file is never replaced: a new master key would not open the keys sealed under the
# old one. The key files go to uid 10001 (the image's remotesign user) with mode 0600, through
# sudo when not run as root.
set -eu
cd "$(dirname "$0")"
umask 077
APP_UID=10001
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p secrets
chmod 0700 secrets

if [ -e secrets/master.key ]; then
    echo "secrets/master.key exists: kept"
else
    head -c 32 /dev/urandom | base64 > secrets/master.key
    echo "secrets/master.key made: keep a copy offline (deploy/README.md, Backups)"
fi

if [ -e secrets/s3_secret_key ]; then
    echo "secrets/s3_secret_key exists: kept"
else
    head -c 30 /dev/urandom | base64 | tr -d '/+=' > secrets/s3_secret_key
fi

if [ -e .env ]; then
    echo ".env exists: kept"
else
    {
        echo "# compose's variables (deploy/compose.yaml); PUBLIC_URL must be set before the first start"
        echo "PUBLIC_URL=http://localhost:8080"
        echo "S3_ACCESS_KEY=remotesign"
    } > .env
fi

# The database password: an earlier version of this script kept it in .env (POSTGRES_PASSWORD),
# which an existing database was made with; otherwise a new one (hex: nothing to URL-encode).
if [ -e secrets/postgres_password ]; then
    echo "secrets/postgres_password exists: kept"
else
    password=$(sed -n 's/^POSTGRES_PASSWORD=//p' .env)
    [ -n "$password" ] || password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$password" > secrets/postgres_password
    # Readable by the postgres image's own user (it reads the file after dropping root).
    chmod 0644 secrets/postgres_password
fi
if [ -e secrets/database_url ]; then
    echo "secrets/database_url exists: kept"
else
    password=$(cat secrets/postgres_password)
    printf 'postgresql+psycopg://remotesign:%s@postgres:5432/remotesign\n' "$password" > secrets/database_url
fi

# The key files, owned by the nodes' user. Mode exactly 0600: the service tightens a private file
# it owns to 0600 at every start, which fails on the read-only mount compose makes of a secret.
as_root chown "$APP_UID:$APP_UID" secrets/master.key secrets/s3_secret_key secrets/database_url
as_root chmod 0600 secrets/master.key secrets/s3_secret_key secrets/database_url

if [ -e secrets/s3.json ]; then
    echo "secrets/s3.json exists: kept"
else
    access_key=$(sed -n 's/^S3_ACCESS_KEY=//p' .env)
    secret_key=$(as_root cat secrets/s3_secret_key)
    printf '{"identities": [{"name": "remotesign", "actions": ["Admin", "Read", "List", "Tagging", "Write"],\n' > secrets/s3.json
    printf '  "credentials": [{"accessKey": "%s", "secretKey": "%s"}]}]}\n' "${access_key:-remotesign}" "$secret_key" >> secrets/s3.json
    # Readable by whatever user SeaweedFS's image runs as; secrets/ (0700) keeps it from the host's users.
    chmod 0644 secrets/s3.json
fi
echo "done: edit PUBLIC_URL in .env if clients will not use http://localhost:8080, then docker compose up -d --build"
