# strangler: static binary on a distroless, non-root base.
#
#   docker build --build-arg VERSION="$(git describe --always --dirty)" -t strangler .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/routes.yaml:/etc/strangler/routes.yaml:ro" strangler
#
# The routes file lives at /etc/strangler/routes.yaml (STRANGLER_CONFIG).
# The image carries deploy/docker/routes.yaml there: everything to an
# upstream named "legacy" (http://legacy:80); mount yours over it. The
# repository's own routes.yaml is the demo's, with loopback upstreams, and
# is not in the image. The operator listener (/metrics, /healthz, /readyz)
# stays on the container's loopback unless the command says otherwise:
#   ... strangler serve -listen :8080 -operator-listen 0.0.0.0:9901
# and then publish 9901 only where Prometheus can reach it.
#
# Base images. They are named by tag here, and the tags move: a rebuild can
# pick up a different image. For reproducible builds pin them by digest at
# build time, after looking the digests up yourself (this file carries none
# it could not verify):
#   docker buildx imagetools inspect golang:1.26-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
#   docker build \
#     --build-arg GO_IMAGE=golang:1.26-bookworm@sha256:<digest> \
#     --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:<digest> .
# (a bot such as Renovate or Dependabot can keep pinned digests current).
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so a code change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# .git is not in the build context (.dockerignore), so the version comes
# from here: strangler version prints it.
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/strangler ./cmd/strangler \
 && /out/strangler validate -strict -config deploy/docker/routes.yaml

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/strangler /usr/local/bin/strangler
COPY --from=build /src/deploy/docker/routes.yaml /etc/strangler/routes.yaml
ENV STRANGLER_CONFIG=/etc/strangler/routes.yaml
# distroless's nonroot user (65532); nothing in the image needs root.
USER nonroot:nonroot
# Overrides (strangler-overrides.json) and shadow results are written here;
# mount a volume to keep them across container restarts.
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/strangler"]
# -listen keeps the public port at :8080 whatever server.listen says in a
# mounted routes file (the demo's says 127.0.0.1:8080, unreachable from
# outside a container). Secrets a routes file names (legacy_identity's
# secret_env, say) come from the environment: docker run -e NAME=... or
# --env-file.
CMD ["serve", "-listen", ":8080"]
