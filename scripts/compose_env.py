"""Random secrets for `make up` (docker-compose.yml), as a .env file on standard output.

    python3 -m scripts.compose_env > .env

Standard library only: it runs before any virtualenv exists. Every value is URL-safe,
since the RabbitMQ passwords go into the services' AMQP URIs.
"""
import secrets
import sys

SERVICES = ("intake", "revisit", "survey", "notify", "gateway")


def secrets_env() -> str:
    lines = ["# Secrets of `make up` (docker-compose.yml); keep this file to yourself.",
             f"GATEWAY_SECRET={secrets.token_urlsafe(48)}",
             "# the gateway's first user `admin` gets this password on a new database",
             f"HUIFANG_ADMIN_PASSWORD={secrets.token_urlsafe(15)}"]
    lines += [f"RABBITMQ_{service.upper()}_PASSWORD={secrets.token_urlsafe(24)}"
              for service in SERVICES]
    lines += ["# set it for RabbitMQ's management UI (user admin); see docker-compose.yml",
              "RABBITMQ_ADMIN_PASSWORD="]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(secrets_env())
