# strangler: static binary on a distroless, non-root base.
#
#   docker build -t strangler .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/routes.yaml:/etc/strangler/routes.yaml:ro" strangler
#
# The routes file lives at /etc/strangler/routes.yaml (STRANGLER_CONFIG);
# mount yours over it. The operator listener (/metrics, /healthz, /readyz)
# stays on the container's loopback unless the command says otherwise:
#   ... strangler serve -listen :8080 -operator-listen 0.0.0.0:9901
# and then publish 9901 only where Prometheus can reach it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a code change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/strangler ./cmd/strangler \
 && STRANGLER_LEGACY_SECRET=build-time-validation-only-not-a-secret \
      /out/strangler validate -config routes.yaml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strangler /usr/local/bin/strangler
COPY --from=build /src/routes.yaml /etc/strangler/routes.yaml
ENV STRANGLER_CONFIG=/etc/strangler/routes.yaml
# distroless's nonroot user (65532); nothing in the image needs root.
USER nonroot:nonroot
# Overrides (strangler-overrides.json) and shadow results are written here;
# mount a volume to keep them across container restarts.
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/strangler"]
# -listen overrides server.listen (the example routes.yaml binds loopback).
# The example routes.yaml needs STRANGLER_LEGACY_SECRET (docker run -e ...).
CMD ["serve", "-listen", ":8080"]
