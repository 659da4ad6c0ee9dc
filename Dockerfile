# Container image: a static binary (CGO_ENABLED=0) on a distroless base, running as non-root,
# its data on a volume. Build and run:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t scimserver .
#   docker run -d --name scimserver -p 8080:8080 -v scimserver-data:/data \
#     --env-file scimserver.env scimserver            # SCIMSERVER_TOKEN=... and the like
# Set SCIMSERVER_TOKEN; without it the first start writes a generated token to the volume's
# /data/first-token (mode 0600), never to the container's log. The image has no shell, so read it
# through the volume: docker run --rm -v scimserver-data:/data busybox cat /data/first-token

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/scimserver ./cmd/scimserver
# The volume's mount point, owned by the image's non-root user (distroless "nonroot", 65532).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scimserver /usr/local/bin/scimserver
COPY --from=build --chown=65532:65532 /out/data /data
ENV SCIMSERVER_ADDR=0.0.0.0:8080 \
    SCIMSERVER_DATA=/data/scimserver.db \
    SCIMSERVER_BOOTSTRAP_TOKEN_FILE=/data/first-token
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# No shell or curl in the image: the binary checks itself (GET /healthz on SCIMSERVER_ADDR).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/scimserver", "healthz"]
# SIGTERM (docker stop) lets in-flight requests finish: give it more than --shutdown-timeout,
# e.g. docker stop -t 45.
ENTRYPOINT ["/usr/local/bin/scimserver"]
