#!/bin/sh
# Entrypoint of hatchet-local's postgres image: the parts of the official image's
# contract that hatchet-local's compose files use.
#
#   docker-entrypoint.sh postgres [-c name=value ...]   initialise PGDATA once, then run
#   docker-entrypoint.sh -c name=value ...              same, "postgres" implied
#   docker-entrypoint.sh anything else                  exec'd as given
set -eu

die() {
    echo "docker-entrypoint: error: $*" >&2
    exit 1
}

# Run a command as the postgres OS user (we may already be it, with `user:`).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups "$@"
    else
        "$@"
    fi
}

# POSTGRES_PASSWORD, or the contents of POSTGRES_PASSWORD_FILE (a Docker secret).
read_password() {
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -z "${POSTGRES_PASSWORD:-}" ] \
            || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
        [ -r "$POSTGRES_PASSWORD_FILE" ] \
            || die "POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE is not a readable file"
        cat "$POSTGRES_PASSWORD_FILE"
    else
        printf '%s' "${POSTGRES_PASSWORD:-}"
    fi
}

# A fresh volume may be root-owned; postgres also insists on a private PGDATA.
fix_permissions() {
    [ "$(id -u)" = 0 ] || return 0
    mkdir -p "$PGDATA" /var/run/postgresql
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
    chmod 0700 "$PGDATA"
    chmod 2775 /var/run/postgresql
}

init_cluster() {
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    password=$(read_password)

    if [ -z "$password" ] && [ "$auth" != trust ]; then
        die "the database is not initialised and no superuser password is set.
  Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty password,
  or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one."
    fi

    # initdb reads the password from a file so it never shows on a command line.
    pwfile= pwopt=
    if [ -n "$password" ]; then
        pwfile=$(mktemp)
        trap 'rm -f "$pwfile"' EXIT
        printf '%s\n' "$password" > "$pwfile"
        [ "$(id -u)" != 0 ] || chown postgres "$pwfile"
        pwopt=--pwfile=$pwfile
    fi

    echo "docker-entrypoint: initialising $PGDATA (superuser $user)"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words on purpose
    as_postgres initdb --pgdata="$PGDATA" --username="$user" \
        ${pwopt:+"$pwopt"} \
        --auth-local=trust --auth-host="$auth" \
        --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
    if [ -n "$pwfile" ]; then
        rm -f "$pwfile"
        trap - EXIT
    fi

    # Later lines win over initdb's. Hatchet panics unless the server's zone is UTC.
    cat >> "$PGDATA/postgresql.conf" <<EOF

# docker-entrypoint.sh
listen_addresses = '*'
timezone = 'UTC'
log_timezone = 'UTC'
EOF
    printf '\n# docker-entrypoint.sh: any address, password checked\nhost all all all %s\n' \
        "$auth" >> "$PGDATA/pg_hba.conf"

    if [ "$db" != postgres ]; then
        # A set-up server with no TCP and its socket in a private directory, so a
        # pg_isready healthcheck cannot report ready before the database exists.
        sockdir=$(mktemp -d)
        [ "$(id -u)" != 0 ] || chown postgres "$sockdir"
        as_postgres pg_ctl --pgdata="$PGDATA" --wait --silent \
            -o "-c listen_addresses='' -c unix_socket_directories=$sockdir" start
        # psql quotes the name itself (:"db"), whatever it contains.
        echo 'CREATE DATABASE :"db";' \
            | as_postgres psql -X -q -v ON_ERROR_STOP=1 --host="$sockdir" \
                --username="$user" --dbname=postgres --set=db="$db"
        as_postgres pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
        rmdir "$sockdir"
    fi
    echo "docker-entrypoint: initialised; database $db is ready"
}

# `docker run IMAGE -c x=y` means `postgres -c x=y`, as with the official image.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
    exec "$@"
fi

fix_permissions
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
fi

if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
