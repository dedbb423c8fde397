# compose.yaml's workshop registry: Debian's docker-registry (distribution 2.8) with LabDeck's
# no-auth config, as two processes over one storage (deploy/registry-serve.sh): read-only for
# the sandboxes on LABDECK_REGISTRY_ADDRESS, writable on a loopback port for the portal's seeding.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
# policy-rc.d: the package's postinst must not try to start the service during the build.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates docker-registry tini \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY app/sandboxes/docker/images/recipes/registry/config.yml /etc/docker/registry/config.yml
COPY deploy/registry-serve.sh /usr/local/bin/registry-serve
RUN install -d -o docker-registry -g docker-registry /var/lib/registry
USER docker-registry
VOLUME /var/lib/registry
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/registry-serve"]
