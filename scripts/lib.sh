# Shared by scripts/run and scripts/test: make sure the virtual environment and the
# services the project needs exist and run, installing them where they are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
PG_HOST="${LOYALTY_PG_HOST:-127.0.0.1}"
PG_PORT="${LOYALTY_PG_PORT:-5432}"
PG_USER="${LOYALTY_PG_ADMIN_USER:-postgres}"   # the administrator: creates roles, databases

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    say "installing with apt: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtual environment in .venv"
        "$PYTHON" -m venv "$VENV" 2>/dev/null || {
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        }
    fi
    local stamp="$VENV/.installed"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] \
        || [ "$ROOT/constraints.txt" -nt "$stamp" ]; then
        say "installing the project and its dependencies (the versions of constraints.txt)"
        "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
        "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]" 2>&1 \
            | grep -v '^WARNING: Location' || true
        "$VENV/bin/python" -c 'import loyalty, litestar, eventsourcing, psycopg, hypothesis, pytest'
        touch "$stamp"
    fi
}

pg_ready() {
    "$VENV/bin/python" - "$PG_HOST" "$PG_PORT" "$PG_USER" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=sys.argv[2], user=sys.argv[3], dbname="postgres",
                password=__import__("os").environ.get("LOYALTY_PG_ADMIN_PASSWORD", ""),
                connect_timeout=3).close()
PY
}

ensure_postgres() {
    pg_ready && return 0
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local version
    for version in $(ls /etc/postgresql); do
        say "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
    # A stock Debian cluster asks for a password over TCP; local development trusts loopback.
    local hba
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
            say "trusting loopback connections in $hba (development machine)"
            as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        fi
    done
    for version in $(ls /etc/postgresql); do
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    done
    for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
    echo "PostgreSQL does not answer on $PG_HOST:$PG_PORT as $PG_USER" >&2
    return 1
}

nats_ready() {
    "$VENV/bin/python" - "${LOYALTY_NATS_URL:-nats://127.0.0.1:4222}" <<'PY' >/dev/null 2>&1
import asyncio, sys, nats
async def check():
    client = await nats.connect(sys.argv[1], connect_timeout=2, allow_reconnect=False)
    await client.jetstream().account_info()
    await client.close()
asyncio.run(asyncio.wait_for(check(), 5))
PY
}

ensure_nats() {
    # Committed events are published to NATS JetStream (LOYALTY_NATS_URL, empty: none).
    local url="${LOYALTY_NATS_URL-nats://127.0.0.1:4222}"
    [ -z "$url" ] && return 0
    nats_ready && return 0
    command -v nats-server >/dev/null || apt_install nats-server
    local port="${url##*:}"
    say "starting nats-server with JetStream on 127.0.0.1:$port (data in var/nats-$port)"
    mkdir -p "$ROOT/var/nats-$port"
    nohup nats-server -a 127.0.0.1 -p "$port" -js -sd "$ROOT/var/nats-$port" \
        >"$ROOT/var/nats-$port/server.log" 2>&1 &
    for _ in $(seq 1 30); do nats_ready && return 0; sleep 1; done
    echo "NATS with JetStream does not answer on $url" >&2
    return 1
}

ensure_database() {
    "$VENV/bin/python" - "$1" <<'PY'
import sys
import psycopg
from psycopg import sql
from loyalty.settings import Settings
settings = Settings.from_env()
with psycopg.connect(settings.admin_conninfo("postgres"), autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (sys.argv[1],)).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(sys.argv[1])))
        print(f"created database {sys.argv[1]}", file=sys.stderr)
PY
}
