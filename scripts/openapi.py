"""Generate docs/openapi.json: the gateway's REST API, from its route table and the schemas.

    make contract     (a test fails when the committed file is stale)

The document is built by services/gateway/docs.py, the same one the gateway serves at
/openapi.json; this file only writes it out with sorted keys, so a change shows as a
small diff.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")   # nameko imports it

from services.gateway.docs import openapi_document


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(render().encode("utf-8"))   # UTF-8 whatever the locale
