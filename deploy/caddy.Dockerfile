# compose.yaml's `https` profile: Debian's Caddy in front of the portal, HTTPS for
# LABDECK_DOMAIN (certificates from Let's Encrypt; Caddy's own CA for localhost), websockets
# included. Its certificates and keys live in the caddy-data volume.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates caddy tini \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY deploy/Caddyfile /etc/caddy/Caddyfile
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
VOLUME /data
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
