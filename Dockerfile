# Cordon gateway. Multi-stage: dependencies are installed in a build stage; the runtime stage runs as
# a non-root user with a read-only policy directory and a writable state volume.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    CORDON_POLICY_DIR=/app/policies \
    CORDON_STATE_DIR=/var/lib/cordon \
    CORDON_ROLE=all
RUN groupadd --system cordon && useradd --system --gid cordon --home-dir /app --shell /usr/sbin/nologin cordon \
    && mkdir -p /var/lib/cordon && chown cordon:cordon /var/lib/cordon && chmod 0700 /var/lib/cordon
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY scripts ./scripts
COPY policies ./policies
USER cordon
VOLUME ["/var/lib/cordon"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# REDIS_URL and CORDON_CLIENTS must be provided: production mode refuses the sample credentials and
# an evicting Redis, and never starts a private redis-server inside the container.
CMD ["node", "--import", "tsx", "gateway/main.ts"]
