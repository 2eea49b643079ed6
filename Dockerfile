# The crs-controller agent image.
#   docker build -t crs-controller:0.1.0 .
# Stage 1 compiles the TypeScript; stage 2 holds only the compiled JavaScript and the production
# dependencies (no compiler, no tests, no dev dependencies).

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY controller ./controller
RUN npm run build

FROM node:20-slim AS production-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=production-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# Runs as root, on purpose: the agent talks to the host's Docker socket and writes under the host's
# Docker data root (it places each replica's checkpoint copy in
# /var/lib/docker/containers/<id>/checkpoints/), both root-owned; the Docker socket's group differs
# from host to host, so no fixed non-root uid/gid would work everywhere. The DaemonSet takes away
# everything else (no privilege escalation, capabilities dropped, read-only root filesystem).
USER root
EXPOSE 9464
ENTRYPOINT ["node", "dist/controller/main.js"]
