"""Templates as data: ``templates/<locale>.yaml``, read with PyYAML and checked.

A template that cannot be rendered from its event is refused when the
catalogue loads, so the service does not start with it.
"""
from pathlib import Path

import yaml

from services.notify import domain

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def load_catalogue(directory=TEMPLATE_DIR):
    """{locale: {template id: Template}} from every ``<locale>.yaml`` in ``directory``."""
    catalogue = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            catalogue[path.stem] = domain.parse_templates(path.stem, yaml.safe_load(handle) or {})
    problems = domain.check_templates(catalogue)
    if problems:
        raise domain.TemplateError("; ".join(problems))
    return catalogue
