# The crs-controller agent image.
#   docker build -t crs-controller:0.1.0 .
# Stage 1 type-checks and bundles the agent (`npm run build`: tsc, then hack/bundle.mjs with esbuild)
# into one self-contained ES module, dist/crs-agent.mjs; the image holds that file and package.json
# (the agent reads its version there), no node_modules, no compiler, no tests.
# BASE_IMAGE is the Node.js 20 the agent runs on; BUILD_IMAGE (default: the same) must also have npm.
# Without a registry, hack/build-image.sh makes both from Debian packages and passes them here.
ARG BASE_IMAGE=node:20-slim
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# esbuild's own install script only checks its binary, which the platform package already holds.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY hack/bundle.mjs ./hack/
COPY controller ./controller
RUN npm run build

FROM ${BASE_IMAGE}
ENV NODE_ENV=production
# glibc's malloc makes up to 8 arenas per core for threads (libuv's pool, V8's helpers); two hold
# what this agent allocates outside the JS heap, with less RSS (docs/benchmarks.md, footprint).
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /src/dist/crs-agent.mjs /src/dist/crs-agent.mjs.LEGAL.txt ./dist/
# The agent reads its version from here (controller/version.ts).
COPY package.json ./
# Runs as root, on purpose: the agent talks to the host's Docker socket and writes under the host's
# Docker data root (it places each replica's checkpoint copy in
# /var/lib/docker/containers/<id>/checkpoints/), both root-owned; the Docker socket's group differs
# from host to host, so no fixed non-root uid/gid would work everywhere. The DaemonSet takes away
# everything else (no privilege escalation, capabilities dropped, read-only root filesystem).
USER root
EXPOSE 9464
# --max-semi-space-size=2 (MB): a small young generation; the agent's allocations are short-lived
# and few, and V8's default (16 MB per semi-space on 64-bit) mostly becomes RSS. Tests run the
# compiled agent with exactly this line (test/integration/support/agent.ts reads it from here).
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/crs-agent.mjs"]
