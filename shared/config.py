"""Read ``config.yaml`` the way ``nameko run --config`` does (``${VAR:default}``)."""
import os
from pathlib import Path
from typing import Any

import yaml
from nameko.cli.main import setup_yaml_parser

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config.yaml"


def load_config(path: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    setup_yaml_parser()
    path = Path(path or os.environ.get("HUIFANG_CONFIG") or DEFAULT_PATH)
    with path.open(encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config.update(overrides)
    return config
