#!/bin/sh
# Entrypoint of hatchet-local's rabbitmq image: the parts of the official image's
# contract that hatchet-local's compose files use.
#
#   docker-entrypoint.sh rabbitmq-server    write the config, fix the data volume,
#                                           run the broker in the foreground as rabbitmq
#   docker-entrypoint.sh anything else      exec'd as given
set -eu

RABBITMQ_HOME=/var/lib/rabbitmq
CONFIG=/etc/rabbitmq/conf.d/10-defaults.conf

die() {
    echo "docker-entrypoint: error: $*" >&2
    exit 1
}

is_root() {
    [ "$(id -u)" = 0 ]
}

write_config() {
    user=${RABBITMQ_DEFAULT_USER:-guest}
    pass=${RABBITMQ_DEFAULT_PASS:-guest}
    # rabbitmq.conf takes a value up to the end of its line; a newline would start
    # another setting.
    case "$user$pass" in
        *"
"*) die "RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS must be single lines" ;;
    esac

    mkdir -p "$(dirname "$CONFIG")"
    # The file holds the password: readable by the broker's group only.
    (umask 027 && cat > "$CONFIG") <<EOF
# Written by docker-entrypoint.sh on every start.
default_user = $user
default_pass = $pass
# The default user may log in from other containers, not only from localhost.
loopback_users = none
listeners.tcp.default = 5672
management.tcp.port = 15672
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
EOF
    if is_root; then
        chgrp rabbitmq "$CONFIG"
    fi
}

# A fresh volume may be root-owned; the broker writes its database and cookie there.
fix_permissions() {
    is_root || return 0
    mkdir -p "$RABBITMQ_HOME"
    find "$RABBITMQ_HOME" \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +
}

# Erlang nodes and the CLI tools (rabbitmqctl, rabbitmq-diagnostics) authenticate
# with the cookie in the rabbitmq user's home, which is the data volume. Make it
# here, owned by rabbitmq, before a healthcheck run as root could create one.
ensure_cookie() {
    cookie=$RABBITMQ_HOME/.erlang.cookie
    [ -s "$cookie" ] && return 0
    (umask 077 && od -An -N20 -tx1 /dev/urandom | tr -d ' \n' > "$cookie")
    chmod 0400 "$cookie"
    if is_root; then
        chown rabbitmq:rabbitmq "$cookie"
    fi
}

if [ "$#" -eq 0 ]; then
    set -- rabbitmq-server
fi
if [ "$1" != rabbitmq-server ]; then
    exec "$@"
fi
shift

write_config
fix_permissions
ensure_cookie

# Debian's /usr/sbin/rabbitmq-server wrapper would send the output to files under
# /var/log/rabbitmq; the script it wraps keeps it on the console. That script stays
# in front of the Erlang VM and turns SIGTERM (docker stop) into a clean shutdown.
# The node name, rabbit@<hostname>, names the data directory: keep the hostname.
cd "$RABBITMQ_HOME"
export HOME="$RABBITMQ_HOME"
if is_root; then
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
