# LabDeck's own images for compose.yaml: the portal (target `portal`, the default) and the
# dedicated sandbox engine (target `engine`), both with LabDeck's code. Online they start from
# the official Debian image:
#   docker compose build
# Offline (no registry) from the debootstrap base that `labdeck images build` makes on the
# engine compose builds with (LABDECK_BUILD_BASE in .env, see the README):
#   LABDECK_BUILD_BASE=labdeck/debian-base:bookworm docker compose build
# Behind a TLS-inspecting proxy, copy its CA (*.crt) into deploy/extra-ca/ first: npm and pip
# reach their registries over HTTPS. The build context is what .dockerignore lets through.
ARG BASE=debian:bookworm-slim

# -- the front-end packages, copied to static/vendor ------------------------------------------
FROM ${BASE} AS frontend
# Lets a builder find and prune this stage's leftover images (see app/sandboxes/docker/images/builder.py).
LABEL io.labdeck.build-stage=portal
# The extra CAs first, as app/sandboxes/docker/images/recipes do: apt uses plain http, npm needs them.
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates nodejs npm \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Node keeps its own CA list; this adds the system's, extra CAs included.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY deploy/copy-vendor-files.sh deploy/
RUN sh deploy/copy-vendor-files.sh

# -- Python and LabDeck's dependencies: what the portal and the engine share ------------------
FROM ${BASE} AS runtime
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
# debootstrap: `labdeck images build` makes the offline base image with it.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv debootstrap tini \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
# The runtime lock: the same pins as requirements.lock without the test tools (playwright, mypy).
COPY requirements-runtime.lock /opt/labdeck/requirements-runtime.lock
# /opt/labdeck goes on the venv's path, as ./labdeck does with a checkout (no package build).
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes -r /opt/labdeck/requirements-runtime.lock \
    && python3 -c 'import site; open(site.getsitepackages()[0] + "/labdeck.pth", "w").write("/opt/labdeck\n")'
WORKDIR /opt/labdeck
ENTRYPOINT ["/usr/bin/tini", "--"]

# -- the sandbox engine: a dockerd with user namespaces (app/sandboxes/docker/engine_service.py)
FROM runtime AS engine
# Building the portal builds this stage too (the classic builder builds every stage before its
# target): the label lets a builder prune the copies left behind.
LABEL io.labdeck.build-stage=engine
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        docker.io iptables iproute2 \
    && rm -rf /var/lib/apt/lists/*
# --userns-remap=default maps sandboxes' root to dockremap's first subordinate id; fixed here,
# so the data root (kept in a volume, under <root>/100000.100000) is found again on every start.
RUN useradd --system --no-create-home --shell /usr/sbin/nologin dockremap \
    && echo dockremap:100000:65536 >/etc/subuid \
    && echo dockremap:100000:65536 >/etc/subgid
COPY . /opt/labdeck
CMD ["python", "-m", "app", "engine", "run", "--bridge", "labdeck1", "--bridge-address", "10.215.0.1/24"]

# -- the portal ------------------------------------------------------------------------------
FROM runtime AS portal
COPY --from=frontend /src/static/vendor /opt/labdeck/static/vendor
COPY . /opt/labdeck
ENV LABDECK_DATA_DIR=/data LABDECK_HOST=0.0.0.0
VOLUME /data
# Builds the sandbox and workshop images when missing, then serves (compose.yaml's engine
# builds them itself, and its portal only serves).
CMD ["python", "-m", "app", "serve", "--build-images"]
