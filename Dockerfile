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

ARG NODE_IMAGE=node:20-bookworm-slim

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
ENV NODE_ENV=production \
    POSTERN_HEALTHCHECK_PORT=2525
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

# Healthy = the SMTP listener answers with a "220" greeting. No extra packages: a node
# one-liner opens a TCP connection from 127.0.0.1, so keep 127.0.0.0/8 in
# smtp.clients (a refused client gets 554 instead of 220 and the check fails). Set
# POSTERN_HEALTHCHECK_PORT if your config listens on another port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=Number(process.env.POSTERN_HEALTHCHECK_PORT||2525),s=require('net').connect(p,'127.0.0.1');s.setTimeout(5000,()=>process.exit(1));s.on('error',()=>process.exit(1));s.once('data',d=>{s.end('QUIT\\r\\n');process.exit(/^220 /.test(String(d))?0:1)})"]

# SIGTERM (docker stop) starts a graceful shutdown: new sessions get 421 4.3.2,
# transactions and deliveries in progress finish until shutdown.timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/postern.cjs"]
CMD ["start", "--config", "/etc/postern/postern.yaml"]
