# r53 in a container: DNS on 53 (UDP and TCP), the API on 8053.
# Build: docker build -t r53 .   Run: docker run -p 53:53/udp -p 53:53 -p 8053:8053 r53
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY api ./api
RUN cargo build --release --locked && strip target/release/r53

FROM debian:bookworm-slim
COPY --from=build /src/target/release/r53 /usr/local/bin/r53
COPY zones /zones
VOLUME /data
EXPOSE 53/udp 53/tcp 8053/tcp
# In a container the API must listen beyond loopback to be reachable; set R53_API_TOKEN.
ENV R53_DNS_ADDR=0.0.0.0:53 \
    R53_API_ADDR=0.0.0.0:8053 \
    R53_DATA_DIR=/data \
    R53_ZONES_DIR=/zones \
    LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/r53"]
CMD ["serve"]
