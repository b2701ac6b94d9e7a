"""Container healthcheck: healthy when the service consumes its RPC queue.

    python -m scripts.healthcheck intake
"""
import sys

from amqp.exceptions import NotFound
from kombu import Connection
from kombu.exceptions import OperationalError

from shared.config import load_config


def is_serving(config, service):
    """True once some instance of ``service`` consumes ``rpc-<service>``."""
    try:
        with Connection(config["AMQP_URI"], connect_timeout=5) as connection:
            _, _, consumers = connection.channel().queue_declare(f"rpc-{service}", passive=True)
    except (NotFound, OperationalError, OSError):
        return False
    return consumers > 0


def main(argv=None):
    service = (argv or sys.argv[1:])[0]
    if is_serving(load_config(), service):
        return 0
    print(f"{service}: nobody consumes rpc-{service}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
