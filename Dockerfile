# Cordon gateway. Three stages: `build` compiles the TypeScript to dist/ (npm run build) with the dev
# dependencies; `deps` installs the production dependencies only; the runtime stage holds those and the
# compiled gateway and CLI, and runs plain node as a non-root user: no tsx, esbuild or typescript.
# The policy directory is mounted, not built in (the sample policies pin published test keys): mount
# yours at /etc/cordon/policies (read-only) or point CORDON_POLICY_DIR elsewhere. See docs/configuration.md.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# @openpgp/web-stream-tools is a dev dependency for openpgp's types, and an optional peer of openpgp
# (which bundles its own copy); typescript and @types/node are optional peers of it. npm marks all of
# them "devOptional" and so installs them even with --omit=dev: nothing at run time loads them, so
# they are removed here, and the check fails the build if TypeScript tooling is still present.
RUN npm ci --omit=dev --no-audit --no-fund \
    && rm -rf node_modules/@openpgp/web-stream-tools node_modules/typescript node_modules/@types node_modules/undici-types \
       node_modules/.bin/tsc node_modules/.bin/tsserver \
    && ! ls node_modules | grep -E '^(tsx|esbuild|typescript)$'

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    CORDON_POLICY_DIR=/etc/cordon/policies \
    CORDON_STATE_DIR=/var/lib/cordon \
    CORDON_ROLE=all
RUN groupadd --system cordon && useradd --system --gid cordon --home-dir /app --shell /usr/sbin/nologin cordon \
    && mkdir -p /var/lib/cordon /etc/cordon/policies && chown cordon:cordon /var/lib/cordon && chmod 0700 /var/lib/cordon
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
# dist/ mirrors the repository: dist/gateway, dist/scripts (the CLI), dist/schemas, dist/examples.
COPY --from=build /app/dist ./dist
# `node scripts/cordon.mjs …` (or `npx cordon …`) runs the compiled CLI from dist/ when tsx is absent.
COPY scripts/cordon.mjs ./scripts/cordon.mjs
USER cordon
VOLUME ["/var/lib/cordon"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# REDIS_URL, CORDON_CLIENTS, CORDON_POLICY_SIGNERS and CORDON_POLICY_QUORUM must be provided, and the
# policy directory (signed) and the signers file mounted: production mode refuses the sample credentials,
# unsigned policy revisions and an evicting Redis, and never starts a private redis-server.
CMD ["node", "dist/gateway/main.js"]
