# The LabDeck portal as an image, for compose.yaml. Online it starts from the official Debian image;
# offline pass --build-arg BASE=labdeck/debian-base:bookworm (made by `labdeck images build`).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS frontend
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates debootstrap tini \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
COPY requirements.lock /opt/labdeck/requirements.lock
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes -r /opt/labdeck/requirements.lock
WORKDIR /opt/labdeck
COPY . /opt/labdeck
COPY --from=frontend /src/node_modules /opt/labdeck/node_modules
RUN mkdir -p static/vendor/htmx static/vendor/htmx-ext-ws static/vendor/xterm static/vendor/xterm-addon-fit \
    && cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/ \
    && (cp node_modules/htmx-ext-ws/dist/ws.js static/vendor/htmx-ext-ws/ || cp node_modules/htmx-ext-ws/ws.js static/vendor/htmx-ext-ws/) \
    && cp node_modules/@xterm/xterm/lib/xterm.js node_modules/@xterm/xterm/css/xterm.css static/vendor/xterm/ \
    && cp node_modules/@xterm/addon-fit/lib/addon-fit.js static/vendor/xterm-addon-fit/ \
    && rm -rf node_modules \
    && python3 -c 'import site, sys; open(site.getsitepackages()[0] + "/labdeck.pth", "w").write("/opt/labdeck\n")'
ENV LABDECK_DATA_DIR=/data LABDECK_HOST=0.0.0.0
VOLUME /data
ENTRYPOINT ["/usr/bin/tini", "--"]
# Builds the sandbox and workshop images through the host's engine when missing, then serves.
CMD ["sh", "-c", "python -m app images build && python -m app serve"]
