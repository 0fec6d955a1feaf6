# syntax=docker/dockerfile:1
# One image, ghcr.io/ambient-code/ambient-session-storage:
#   docker build -t ambient-session-storage:dev .
# It runs the CLI (dist/cli.js) on a distroless Node LTS image: no shell, no package
# manager, non-root by default. The webhook injects the agent with only `args`
# (["hydrate"] / ["sync"]), so the ENTRYPOINT must be the CLI itself.
# Base images are pinned by digest (multi-arch index digests, so buildx resolves the right
# platform) and bumped by Dependabot (.github/dependabot.yml): a rebuild of the same commit
# gets the same bases. The tags beside the digests are for people; the digest wins.
ARG BUILD_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
# tsc's type check, then esbuild's bundle of the CLI and its dependencies (scripts/build.mjs):
# dist/ needs no node_modules at run time.
RUN npm run build

# The production dependencies, which the bundle carries inside dist/: the image has no
# node_modules, so the release's SBOM (buildx --sbom) lists them from this stage, which the
# runtime stage takes its package.json from (BuildKit scans only the stages it builds).
FROM ${BUILD_IMAGE} AS deps
ARG BUILDKIT_SBOM_SCAN_STAGE=true
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${RUNTIME_IMAGE} AS runtime
# The release workflow passes these; package.json's version is the one source of VERSION.
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ambient-session-storage" \
      org.opencontainers.image.description="Session storage for Ambient Code Platform session pods: admission webhook and S3 hydrate/sync agent" \
      org.opencontainers.image.source="https://github.com/ambient-code/ambient-session-storage" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"
WORKDIR /app
ENV NODE_ENV=production
# For the agent (hydrate, sync): V8 sizes the young generation from the machine, up to
# 128 MiB here, and a restore's per-request garbage filled it: hydrate's peak RSS was ~30 MiB
# higher without this. The webhook's Deployment sets its own NODE_OPTIONS, which replaces
# this one. The bench runs the agent with these flags (bench/lib/tools.ts reads them here).
ENV NODE_OPTIONS=--max-semi-space-size=1
# glibc gives threads that allocate their own malloc arenas (up to 8 per core), and a
# restore's socket and file buffers are allocated and freed on the libuv and V8 threads as
# well as the main one: freed memory stayed in those arenas. Two arenas took hydrate's peak
# RSS from 121-128 to 110-113 MiB at the same wall and CPU time. It applies to the webhook too.
ENV MALLOC_ARENA_MAX=2
# The bundle carries its dependencies and the version; package.json's "type": "module" is
# what tells Node that dist/*.js are ES modules.
COPY --from=deps /src/package.json ./package.json
COPY --from=build /src/dist ./dist
USER 65532:65532

# One image for both roles: the Deployment runs it with args [webhook], and the webhook
# injects it as init-hydrate / state-sync with args [hydrate] / [sync]. The agent runs with
# readOnlyRootFilesystem and writes only under WORKSPACE_DIR, AGENT_STATE_DIR and /tmp, all
# EmptyDirs the webhook mounts.
EXPOSE 8443
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["webhook"]
