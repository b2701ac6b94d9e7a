# One image for the four services and the gateway; docker-compose.yml picks the
# service per container (the gateway's command-line tool, huifang-users, comes with it).
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

COPY pyproject.toml requirements.lock README.md ./
COPY shared ./shared
COPY services ./services
COPY scripts ./scripts
COPY config.yaml ./
RUN pip install --no-cache-dir -c requirements.lock . \
    && useradd --system --no-create-home huifang
USER huifang

CMD ["nameko", "run", "--config", "config.yaml", "services.intake.service"]
