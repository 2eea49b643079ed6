# The crs-controller agent image.
#   docker build -t crs-controller:0.1.0 .
# Stage 1 compiles the TypeScript; stage 2 installs only the production dependencies; the image holds
# the compiled JavaScript and those (no compiler, no tests, no dev dependencies).
# BASE_IMAGE is the Node.js 20 the agent runs on; BUILD_IMAGE (default: the same) must also have npm.
# Without a registry, hack/build-image.sh makes both from Debian packages and passes them here.
ARG BASE_IMAGE=node:20-slim
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY controller ./controller
RUN npm run build

FROM ${BUILD_IMAGE} AS production-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=production-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The agent reads its version from here (controller/version.ts).
COPY package.json ./
# Runs as root, on purpose: the agent talks to the host's Docker socket and writes under the host's
# Docker data root (it places each replica's checkpoint copy in
# /var/lib/docker/containers/<id>/checkpoints/), both root-owned; the Docker socket's group differs
# from host to host, so no fixed non-root uid/gid would work everywhere. The DaemonSet takes away
# everything else (no privilege escalation, capabilities dropped, read-only root filesystem).
USER root
EXPOSE 9464
ENTRYPOINT ["node", "dist/controller/main.js"]
