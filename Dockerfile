# The dispatcher (faas-server) and the worker (faas-worker) in one image.
#   docker build -t lowcode-faas .
#   docker run -p 8080:8080 lowcode-faas                 # dispatcher (default command)
#   docker run -p 9090:9090 lowcode-faas worker          # worker
# `dispatcher` and `worker` are links to faas-server and faas-worker, the
# names the Go version's image and compose files run.
# Data: LOWCODE_FAAS_DATA_DIR=/data; /app/data (the Go version's mount,
# `./data:/app/data`) is a link to it, so a volume mounted at either path is
# the data directory. The working directory is /app, as in the Go image.
# The Docker runtime talks to the daemon named by DOCKER_HOST (mount
# /var/run/docker.sock; see docker-compose.yml); the process runtime uses the
# image's nodejs.
FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p faas-server -p faas-worker

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates nodejs \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home faas \
 && mkdir -p /data /app && chown faas:faas /data \
 && ln -s /data /app/data
COPY --from=build /src/target/release/faas-server /src/target/release/faas-worker /usr/local/bin/
RUN ln -s faas-server /usr/local/bin/dispatcher \
 && ln -s faas-worker /usr/local/bin/worker
COPY --chown=faas:faas data/ /data/
USER faas
WORKDIR /app
ENV LOWCODE_FAAS_DATA_DIR=/data \
    LOWCODE_FAAS_LISTEN=:8080 \
    LOWCODE_FAAS_WORKER_LISTEN=:9090
EXPOSE 8080 9090
CMD ["faas-server"]
