# The LabDeck portal as an image, for compose.yaml. Online it starts from the official Debian image:
#   docker compose build
# Offline (no registry) it starts from the debootstrap base that `./labdeck images build` makes:
#   docker compose build --build-arg BASE=labdeck/debian-base:bookworm
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

# -- the portal ------------------------------------------------------------------------------
FROM ${BASE}
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
# debootstrap: the portal builds the offline base image when the host's engine lacks it.
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
COPY --from=frontend /src/static/vendor /opt/labdeck/static/vendor
COPY . /opt/labdeck
ENV LABDECK_DATA_DIR=/data LABDECK_HOST=0.0.0.0
VOLUME /data
ENTRYPOINT ["/usr/bin/tini", "--"]
# Builds the sandbox and workshop images through the host's engine when missing, then serves.
CMD ["python", "-m", "app", "serve", "--build-images"]
