# Like ghcr.io/hatchet-dev/hatchet/hatchet-frontend (build/package/frontend.dockerfile):
# cmd/hatchet-staticfileserver serving the dashboard's built assets.
ARG BASE_IMAGE=hatchet-local-rig/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
WORKDIR /app
COPY hatchet-staticfileserver /app/hatchet-staticfileserver
COPY dist /app/dist
EXPOSE 8080
CMD ["/app/hatchet-staticfileserver", "-static-asset-dir", "/app/dist", "-port", "8080"]
