# dealgate: multi-stage build on Debian bookworm; runs as a non-root user with the decision
# log on a volume. TLS ends at a reverse proxy in front (see deploy/).
FROM debian:bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libcivetweb-dev libcjson-dev libcurl4-openssl-dev \
      libmbedtls-dev libinih-dev libsqlite3-dev libcsv-dev libcmocka-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2 --target dealgate

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcivetweb1 libcjson1 libcurl4 libmbedtls14 libmbedcrypto7 libmbedx509-1 libinih1 \
      libsqlite3-0 libcsv3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/dealgate dealgate \
    && mkdir -p /var/lib/dealgate /etc/dealgate && chown dealgate /var/lib/dealgate
COPY --from=build /src/build/dealgate /usr/local/bin/dealgate
COPY config/ /etc/dealgate/
WORKDIR /etc/dealgate
USER dealgate
VOLUME ["/var/lib/dealgate"]
EXPOSE 8080
# Mount your own dealgate.ini over /etc/dealgate/dealgate.ini; set data_dir = /var/lib/dealgate
# and listen = 0.0.0.0:8080 with real tokens (open = yes is refused off loopback).
ENTRYPOINT ["/usr/local/bin/dealgate"]
CMD ["serve", "-c", "/etc/dealgate/dealgate.ini"]
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1"]
