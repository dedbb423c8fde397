#!/bin/sh
# The workshop registry beside the portal (compose.yaml): one storage, two processes.
#   read-only, on REGISTRY_ADDRESS:REGISTRY_PORT: every sandbox's mirror; pushes and deletes get
#     405, so no attendee changes what another pulls (app/sandboxes/docker/registry.py);
#   writable, on 127.0.0.1:SEED_PORT: the portal seeds through it; the sandboxes' firewall
#     lets them reach nothing on the host but the read-only one.
# Either one ending ends the container, and its restart policy starts both again.
set -eu
config=/etc/docker/registry/config.yml
# Set: a pull-through cache of that upstream (not seeded). compose passes it empty when unset.
[ -n "${REGISTRY_PROXY_REMOTEURL:-}" ] || unset REGISTRY_PROXY_REMOTEURL
REGISTRY_HTTP_ADDR="127.0.0.1:$SEED_PORT" /usr/bin/docker-registry serve "$config" &
seeder=$!
REGISTRY_STORAGE_MAINTENANCE_READONLY='{"enabled":true}' \
    REGISTRY_HTTP_ADDR="$REGISTRY_ADDRESS:$REGISTRY_PORT" /usr/bin/docker-registry serve "$config" &
server=$!
stopping=0
trap 'stopping=1' TERM INT
# Whichever ends first (or a stop), stop the other; wait -n is not POSIX, so poll.
while [ "$stopping" = 0 ] && kill -0 "$seeder" 2>/dev/null && kill -0 "$server" 2>/dev/null; do
    sleep 1
done
kill "$seeder" "$server" 2>/dev/null || :
wait || :
[ "$stopping" = 1 ]
