# The operator-only binary (`--no-default-features`: no embedded cluster, kubelet or simulator)
# on a distroless base, running as a non-root user.
#   docker build -t ghcr.io/gamedeploy/gamedeploy:0.1.0 .
# Not built by this repository's CI (its machines have no Docker); tests/deploy.rs checks the
# points above stay true.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --no-default-features --bin gamedeploy

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/gamedeploy /usr/local/bin/gamedeploy
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/gamedeploy"]
CMD ["run"]
