#!/bin/sh
# `docker compose run --rm secrets-init`: make (or complete) the secrets folder ./secrets of
# docker-compose.yml, then give each service its own copy of the secrets it reads.
#
#   1. `demandmon secrets init DIR` (deploy/secrets) makes the CA, the certificates, the
#      passwords, the Redis ACL file and the Prometheus/Alertmanager web configurations;
#      it runs as the owner of DIR (the owner of the checkout when Docker has just made
#      DIR), so the folder stays the user's own: mode 0700, secrets 0600, and running
#      `demandmon secrets init secrets` on the host works on the same folder.
#   2. grafana-admin.password, the Grafana admin's password, is made beside them (0600).
#   3. Compose mounts files as they are on the host (it cannot change their owner or mode),
#      and most images run as their own unprivileged user, which cannot read a 0600 file
#      of someone else. So every private file a service reads is copied to
#      DIR/compose/<service>/, owned by the user that service runs as, mode 0400; a file
#      several services read (metrics.password: Prometheus, the app, Grafana) gets a copy each.
#      Certificates (*.pem, public) are mounted from DIR itself.
#
# Running it again keeps every secret and remakes the copies, so after changing a secret
# (remove its file and run this again) restart the services that read it.
# Needs root for step 3 (the compose service runs it as root); without root the copies
# keep the caller as owner and only services running as the caller can read them.
set -eu

DIR=${1:-/secrets}
HERE=$(cd "$(dirname "$0")" && pwd)
COPIES=$DIR/compose

# Who each service runs as (uid:gid), from its image:
#   kafka (apache/kafka): appuser; redis (redis, after its entrypoint's gosu): redis;
#   prometheus, alertmanager (prom/*): nobody; grafana (grafana/grafana): grafana, group
#   root; app (worker, exporter, topics; the Dockerfile's USER): demandmon.
# And the private files each reads (see docker-compose.yml).
COPY_TABLE='
kafka        1000:1000   kafka-keystore.pem kafka-controller-keystore.pem kafka-admin.password kafka-worker.password kafka-replay.password
redis        999:999     redis.key redis-users.acl redis-admin.password
prometheus   65534:65534 prometheus-web.yml prometheus.key metrics.password web.password
alertmanager 65534:65534 alertmanager-web.yml alertmanager.key alerts.token web.password
grafana      472:0       grafana-admin.password web.password metrics.password
app          10001:10001 web.key metrics.password alerts.token kafka-admin.password kafka-worker.password redis-worker.password redis-exporter.password
'

# Certificates services mount from DIR itself (public; never a key or a key store).
PUBLIC="ca.pem kafka.pem kafka-controller.pem redis.pem prometheus.pem alertmanager.pem web.pem"

say() { printf 'secrets-init: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

owner_of() { stat -c '%u:%g' "$1"; }

empty_dir() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ]; }

is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as OWNER (root drops to it; anyone else must be it already).
as_owner() {
    if [ "$OWNER" = "$(id -u):$(id -g)" ]; then
        "$@"
    elif is_root; then
        setpriv --reuid="${OWNER%%:*}" --regid="${OWNER##*:}" --clear-groups -- "$@"
    else
        die "$DIR belongs to $OWNER: run this as that user or as root"
    fi
}

new_password() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
    echo
}

# Make DIR/grafana-admin.password when it is missing (as OWNER, created 0600).
grafana_password() {
    file=$DIR/grafana-admin.password
    [ -e "$file" ] && return 0
    tmp=$DIR/.grafana-admin.password.$$
    # shellcheck disable=SC2016 # expanded by the inner shell
    new_password | as_owner sh -c 'umask 077; set -C; cat >"$1" && mv "$1" "$2"' sh "$tmp" "$file"
}

# Copy the files of one service into NEW/<service>, owned by its user, mode 0400.
copy_for() {
    service=$1 user=$2
    shift 2
    target=$NEW/$service
    mkdir -m 0700 "$target"
    for name in "$@"; do
        [ -f "$DIR/$name" ] || die "$DIR/$name is missing"
        if is_root; then
            install -o "${user%%:*}" -g "${user##*:}" -m 0400 "$DIR/$name" "$target/$name"
        else
            install -m 0400 "$DIR/$name" "$target/$name"
        fi
    done
    is_root && chown "$OWNER" "$target"
    return 0
}

main() {
    umask 077
    mkdir -p "$DIR"
    if [ -n "${SECRETS_OWNER:-}" ]; then
        OWNER=$SECRETS_OWNER
    elif empty_dir "$DIR" && [ "$(owner_of "$DIR")" = 0:0 ]; then
        # Docker made the folder for the bind mount: hand it to the checkout's owner.
        OWNER=$(owner_of "$HERE")
    else
        OWNER=$(owner_of "$DIR")
    fi
    if empty_dir "$DIR"; then
        is_root && chown "$OWNER" "$DIR"
        chmod 0700 "$DIR"
    fi

    # umask 022 so that the certificates come out 0644 (the secrets are 0600 regardless);
    # and certificates made earlier under a stricter umask are opened up: containers
    # running as other users mount them from DIR.
    (umask 022 && as_owner demandmon secrets init "$DIR" >/dev/null)
    for name in $PUBLIC; do
        [ -f "$DIR/$name" ] || die "$DIR/$name is missing"
        as_owner chmod 0644 "$DIR/$name"
    done
    grafana_password

    NEW=$DIR/.compose.$$
    rm -rf "$NEW"
    mkdir -m 0700 "$NEW"
    printf '%s\n' "$COPY_TABLE" | while read -r service user files; do
        [ -n "$service" ] || continue
        # shellcheck disable=SC2086 # the file list is meant to split
        copy_for "$service" "$user" $files
    done
    is_root && chown "$OWNER" "$NEW"
    rm -rf "$COPIES"
    mv "$NEW" "$COPIES"
    is_root || say "not root: the copies in $COPIES belong to $(id -u), so services running as another user cannot read them"
    say "secrets in $DIR (owner $OWNER), each service's copies in $COPIES"
    say "restart the services after changing a secret: docker compose up -d --force-recreate"
}

main
