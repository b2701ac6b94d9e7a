# One image for the four services and the gateway; docker-compose.yml picks the
# service per container (the gateway's command-line tool, huifang-users, comes with it).
# The console's charts (ECharts) come from the npm registry, pinned and checked by
# `make assets`; a stage of their own, so the image carries no npm.
FROM node:20-slim AS assets
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts/npm-file.sh ./scripts/
RUN make assets

FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The gateway's PDF records (WeasyPrint): pango to lay out, a CJK font to print Chinese.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml requirements.lock README.md ./
COPY shared ./shared
COPY services ./services
COPY --from=assets /src/services/gateway/static/vendor ./services/gateway/static/vendor
COPY scripts ./scripts
COPY config.yaml ./
RUN pip install --no-cache-dir -c requirements.lock . \
    && useradd --system --no-create-home huifang
USER huifang

CMD ["nameko", "run", "--config", "config.yaml", "services.intake.service"]
