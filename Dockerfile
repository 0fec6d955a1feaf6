# syntax=docker/dockerfile:1
# Two images from one build:
#   docker build --target agent   -t ambient-session-storage-agent .
#   docker build --target webhook -t ambient-session-storage-webhook .
# Both run the same CLI (dist/cli.js) on a distroless Node LTS image: no shell, no package
# manager, non-root by default. The webhook injects the agent with only `args`
# (["hydrate"] / ["sync"]), so the ENTRYPOINT must be the CLI itself.
ARG NODE_MAJOR=24

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_MAJOR}-bookworm-slim AS runtime-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
# version.ts reads the version from package.json next to dist/.
COPY --from=build /src/package.json ./package.json
COPY --from=runtime-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 65532:65532

# init-hydrate / state-sync. Runs with readOnlyRootFilesystem: it writes only under
# WORKSPACE_DIR, AGENT_STATE_DIR and /tmp, all EmptyDirs the webhook mounts.
FROM runtime AS agent
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["sync"]

FROM runtime AS webhook
EXPOSE 8443
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["webhook"]
