#!/bin/sh
# Start the Kafka node of docker-compose.yml in its secure shape (docs/security.md), in
# place of the apache/kafka image's own entrypoint (which formats the storage itself, with
# no SCRAM users):
#
#   1. write server.properties: every KAFKA_* variable as the image maps it
#      (KAFKA_LOG_DIRS -> log.dirs; "__" -> "_", "___" -> "-"), then the security settings,
#      which come last and so win over any variable: SASL_SSL with SCRAM-SHA-512 for
#      clients and inter-broker (as admin), the controller listener on SSL with client
#      certificates, PEM key stores from the secrets, StandardAuthorizer with
#      allow.everyone.if.no.acl.found=false, super users admin and kafka-controller;
#   2. format the storage once, creating the SCRAM users admin, worker and replay with the
#      passwords in their secret files (kafka-storage format --add-scram);
#   3. on a later start, set the worker's and replay's SCRAM credentials again from their
#      files once the broker answers (so a regenerated password takes effect on restart);
#   4. exec the broker.
#
# Passwords never appear on a command line: the Java tools read them from argument files
# (java @file) and the broker from server.properties, all written with umask 077 into
# CONFIG_DIR. `kafka-start.sh config` only writes the configuration (tests, debugging).
set -eu

SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
DIST_DIR=${DIST_DIR:-/opt/kafka}
CONFIG_DIR=${CONFIG_DIR:-/etc/kafka/demandmon}
PROPS=$CONFIG_DIR/server.properties
ADMIN_CLIENT=$CONFIG_DIR/admin-client.properties
MECHANISM=SCRAM-SHA-512
SASL_LISTENER=SASL_SSL
CONTROLLER_LISTENER=CONTROLLER
ADMIN="admin"
CONTROLLER_PRINCIPAL=kafka-controller
# Users whose SCRAM credentials a restart sets again from their files. The admin's cannot
# be: the broker logs in with it, so it stays the one it was formatted with.
SYNCED_USERS="worker replay"
NEWLINE='
'

say() { printf 'kafka-start: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# The first line of a secret file: it must exist, be readable and hold a safe password.
secret() {
    file=$SECRETS_DIR/$1
    [ -r "$file" ] || die "cannot read $file (make the secrets: docker compose run --rm secrets-init)"
    value=$(head -n 1 "$file" | tr -d ' \t\r')
    [ -n "$value" ] || die "$file is empty"
    case $value in
    *[!A-Za-z0-9._~+/-]*) die "$file: a password may hold only letters, digits and ._~+/-" ;;
    esac
    printf '%s' "$value"
}

need_file() {
    [ -r "$SECRETS_DIR/$1" ] || die "cannot read $SECRETS_DIR/$1 (make the secrets: docker compose run --rm secrets-init)"
}

# KAFKA_* variables that configure the launcher scripts, not the broker.
launcher_variable() {
    case $1 in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | \
        KAFKA_JMX_OPTS | KAFKA_JMX_PORT | KAFKA_JMX_HOSTNAME | KAFKA_LOG4J_OPTS | \
        KAFKA_LOG4J_ROOT_LOGLEVEL | KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL | \
        KAFKA_DEBUG | KAFKA_VERSION | KAFKA_HOME) return 0 ;;
    esac
    return 1
}

# Every KAFKA_* variable as a property line, named as the image's entrypoint names them.
env_properties() {
    env | sed -n 's/^\(KAFKA_[A-Z0-9_]*\)=.*$/\1/p' | sort -u | while read -r name; do
        launcher_variable "$name" && continue
        eval "value=\${$name-}"
        [ -n "$value" ] || continue
        case $value in
        *"$NEWLINE"*) die "$name: a value cannot span lines" ;;
        esac
        key=$(lower "$(printf '%s' "${name#KAFKA_}" | sed 's/___/-/g; s/__/@/g; s/_/./g; s/@/_/g')")
        printf '%s=%s\n' "$key" "$value"
    done
}

lower() {
    printf '%s' "$1" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz'
}

jaas() {
    printf 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' "$1" "$2"
}

# The security settings: written after the variables, so that none of them can weaken these.
security_properties() {
    admin_password=$(secret "kafka-$ADMIN.password")
    sasl=$(lower "$SASL_LISTENER")
    controller=$(lower "$CONTROLLER_LISTENER")
    mechanism=$(lower "$MECHANISM")
    cat <<EOF
# --- security (deploy/compose/kafka-start.sh; these win over the variables above) ---
listener.security.protocol.map=$CONTROLLER_LISTENER:SSL,$SASL_LISTENER:SASL_SSL
inter.broker.listener.name=$SASL_LISTENER
controller.listener.names=$CONTROLLER_LISTENER
sasl.enabled.mechanisms=$MECHANISM
sasl.mechanism.inter.broker.protocol=$MECHANISM
listener.name.$sasl.$mechanism.sasl.jaas.config=$(jaas "$ADMIN" "$admin_password")
listener.name.$sasl.ssl.keystore.type=PEM
listener.name.$sasl.ssl.keystore.location=$SECRETS_DIR/kafka-keystore.pem
listener.name.$sasl.ssl.truststore.type=PEM
listener.name.$sasl.ssl.truststore.location=$SECRETS_DIR/ca.pem
listener.name.$controller.ssl.keystore.type=PEM
listener.name.$controller.ssl.keystore.location=$SECRETS_DIR/kafka-controller-keystore.pem
listener.name.$controller.ssl.truststore.type=PEM
listener.name.$controller.ssl.truststore.location=$SECRETS_DIR/ca.pem
listener.name.$controller.ssl.client.auth=required
listener.name.$controller.ssl.principal.mapping.rules=RULE:^CN=([a-z-]+),O=demandmon\$/\$1/,DEFAULT
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$ADMIN;User:$CONTROLLER_PRINCIPAL
EOF
}

write_config() {
    [ -n "${KAFKA_LOG_DIRS:-}" ] || die "KAFKA_LOG_DIRS must name the data volume"
    for file in ca.pem kafka-keystore.pem kafka-controller-keystore.pem; do
        need_file "$file"
    done
    mkdir -p "$CONFIG_DIR"
    chmod 0700 "$CONFIG_DIR"
    rm -f "$PROPS.tmp" "$ADMIN_CLIENT.tmp"
    {
        echo "# Written by deploy/compose/kafka-start.sh at every start: do not edit."
        env_properties
        security_properties
    } >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
    admin_password=$(secret "kafka-$ADMIN.password")
    {
        echo "security.protocol=SASL_SSL"
        echo "sasl.mechanism=$MECHANISM"
        echo "sasl.jaas.config=$(jaas "$ADMIN" "$admin_password")"
        echo "ssl.truststore.type=PEM"
        echo "ssl.truststore.location=$SECRETS_DIR/ca.pem"
    } >"$ADMIN_CLIENT.tmp"
    mv "$ADMIN_CLIENT.tmp" "$ADMIN_CLIENT"
}

# One token of a java @argument file: quoted, backslashes and quotes escaped.
token() {
    printf '"%s"\n' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# Run a Kafka main class with the arguments in the file $1 (removed afterwards).
run_with_argfile() {
    status=0
    "$DIST_DIR/bin/kafka-run-class.sh" "@$1" || status=$?
    rm -f "$1"
    return "$status"
}

formatted() {
    [ -f "${KAFKA_LOG_DIRS%%,*}/meta.properties" ]
}

format_storage() {
    cluster_id=${CLUSTER_ID:-$("$DIST_DIR/bin/kafka-run-class.sh" kafka.tools.StorageTool random-uuid)}
    args=$CONFIG_DIR/format.args
    rm -f "$args"
    {
        token kafka.tools.StorageTool
        token format
        token --cluster-id
        token "$cluster_id"
        token --config
        token "$PROPS"
        for user in $ADMIN $SYNCED_USERS; do
            token --add-scram
            token "$MECHANISM=[name=$user,password=$(secret "kafka-$user.password")]"
        done
    } >"$args"
    say "formatting ${KAFKA_LOG_DIRS%%,*} (cluster $cluster_id) with SCRAM users: $ADMIN $SYNCED_USERS"
    run_with_argfile "$args"
}

# host:port of the SASL_SSL listener the broker advertises (the name its certificate holds).
advertised() {
    printf '%s\n' "${KAFKA_ADVERTISED_LISTENERS:-}" | tr ',' '\n' |
        sed -n "s|^$SASL_LISTENER://\(.*\)$|\1|p" | head -n 1
}

config_command() {
    args=$CONFIG_DIR/configs.$$.args
    rm -f "$args"
    {
        token kafka.admin.ConfigCommand
        token --bootstrap-server
        token "$1"
        token --command-config
        token "$ADMIN_CLIENT"
        shift
        for arg in "$@"; do token "$arg"; done
    } >"$args"
    run_with_argfile "$args"
}

# After a restart: wait for the broker, then set the synced users' credentials again.
sync_users() {
    bootstrap=$(advertised)
    [ -n "$bootstrap" ] || {
        say "no $SASL_LISTENER listener advertised: SCRAM credentials left as they are"
        return 0
    }
    tries=0
    until config_command "$bootstrap" --describe --entity-type users >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            say "the broker did not answer at $bootstrap: SCRAM credentials left as they are"
            return 0
        fi
        sleep 5
    done
    for user in $SYNCED_USERS; do
        password=$(secret "kafka-$user.password") || continue
        if config_command "$bootstrap" --alter --entity-type users --entity-name "$user" \
            --add-config "$MECHANISM=[password=$password]" >/dev/null 2>&1; then
            say "SCRAM credential of $user set from kafka-$user.password"
        else
            say "could not set the SCRAM credential of $user"
        fi
    done
}

main() {
    umask 077
    write_config
    [ "${1:-start}" = config ] && return 0
    if formatted; then
        for user in $SYNCED_USERS; do secret "kafka-$user.password" >/dev/null; done
        # Detached twice, so that the container's init (compose `init: true`) reaps it.
        (sync_users &)
    else
        format_storage
    fi
    exec "$DIST_DIR/bin/kafka-server-start.sh" "$PROPS"
}

main "$@"
