# ers-bridge container image: multi-stage, current Node LTS, production dependencies only, non-root, works with a
# read-only root filesystem (nothing is written at run time; logs go to stdout). The default command serves the
# rules file at $ERS_BRIDGE_RULES, /etc/ers-bridge/rules.yaml: mount the environment's rules there, and the keys:
#   docker run -p 8080:8080 -v $PWD/rules/int.yaml:/etc/ers-bridge/rules.yaml:ro -v /secure/keys:/run/secrets:ro \
#     -e ERS_INT_API_KEY=... ers-bridge
# Without it, serve exits 2 with one line naming the path to mount. The shipped rules are in /app/rules too
# (-e ERS_BRIDGE_RULES=/app/rules/int.yaml). Ports: 8080 the legacy API (PORT), 8081 the ops surface: /healthz,
# /readyz, /metrics (OPS_PORT). Publish 8081 only to the orchestrator and monitoring.
FROM node:26-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:26-slim
ENV NODE_ENV=production
# Where the default command (serve) reads the rules; Kubernetes mounts its ConfigMap there (deploy/k8s).
ENV ERS_BRIDGE_RULES=/etc/ers-bridge/rules.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY rules ./rules
COPY schema ./schema
COPY fixtures ./fixtures
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.OPS_PORT||8081)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The environment and node's flags are bin/ers-bridge.js's (its first line; the comment below it says why): the image
# runs ers-bridge as the executable does.
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--max-semi-space-size=8", "--no-allocation-site-pretenuring", "bin/ers-bridge.js"]
CMD ["serve", "--host", "0.0.0.0"]
