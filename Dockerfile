# syntax=docker/dockerfile:1
#
# Postern container image.
#
#   docker build -t postern .
#   docker run -d --name postern \
#     -p 25:2525 \
#     -v /srv/postern/postern.yaml:/etc/postern/postern.yaml:ro \
#     -v postern-data:/var/lib/postern \
#     --stop-timeout 40 \
#     postern
#
# Inside the container Postern runs as the unprivileged user "node" and cannot bind
# port 25, so the config listens on 2525 ("0.0.0.0:2525") and the host publishes
# 25 → 2525. dataDir must be /var/lib/postern (the volume). The config file is not
# baked in: mount yours at /etc/postern/postern.yaml (config/docker.yaml is the demo
# used by docker-compose.yml). Give `docker stop` more time than shutdown.timeout
# (default 30s) so in-flight transactions can finish.

# Pinned to a release (not the moving node:20 tag), so a rebuild gives the same runtime;
# raise it on purpose (--build-arg NODE_IMAGE=... to try another).
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

# --- build: compile TypeScript with the full (dev) dependency set -------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" runs tsc, and the sources are not copied yet; the
# explicit build below does the same thing once they are.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies only ----------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would run tsc, which is a dev dependency and not
# installed here. No production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Example configs (config/postern.yaml, config/docker.yaml) for reference.
COPY config ./config

# The data directory is created before VOLUME so a new named volume starts out owned
# by the unprivileged user. /etc/postern is where the config file is mounted.
RUN mkdir -p /var/lib/postern /etc/postern \
 && chown node:node /var/lib/postern \
 && chmod 0750 /var/lib/postern
VOLUME ["/var/lib/postern"]

USER node
EXPOSE 2525

# Healthy = ready: the admin listener's /readyz answers 200 (spool writable, disk not
# full, journal sink and Redis reachable). While it answers 503, SMTP also refuses new
# mail with 451/452, so an orchestrator should route around this instance. No extra
# packages: a node one-liner asks 127.0.0.1. Keep admin.listen on the container's
# loopback (the default 127.0.0.1:9025) or set POSTERN_HEALTHCHECK_URL.
ENV POSTERN_HEALTHCHECK_URL=http://127.0.0.1:9025/readyz
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.POSTERN_HEALTHCHECK_URL,{signal:AbortSignal.timeout(5000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM (docker stop) starts a graceful shutdown: new sessions get 421 4.3.2,
# transactions and deliveries in progress finish until shutdown.timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/postern.cjs"]
CMD ["start", "--config", "/etc/postern/postern.yaml"]
