"""Templates as data: ``templates/<locale>.yaml``, read with PyYAML and checked.

An estate may word any template its own way: a directory of its own
``<locale>.yaml`` files (``template_dir``) or entries in its config
(``templates``), laid over the group's. A template that cannot be rendered
from its event — a parameter the event does not supply, or one it must show
and does not — is refused when the catalogue loads, so the service does not
start with it.
"""
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from services.notify import message_templates, notifications
from services.notify.message_templates import Catalogue

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def read_directory(directory: str | Path) -> Catalogue:
    """{locale: {template id: Template}} from every ``<locale>.yaml`` in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise message_templates.TemplateError(f"template directory {directory} does not exist")
    documents = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            try:
                document = yaml.safe_load(handle) or {}
            except yaml.YAMLError as exc:
                raise message_templates.TemplateError(f"{path}: not valid YAML: {exc}") from None
        documents[path.stem] = message_templates.parse_templates(path.stem, document)
    return documents


def load_catalogue(directory: str | Path = TEMPLATE_DIR) -> Catalogue:
    """The group's templates, checked."""
    catalogue = read_directory(directory)
    _check(catalogue, str(directory))
    return catalogue


def with_overrides(catalogue: Catalogue, estate_id: str, template_dir: str | None = None,
                   templates: Mapping[str, Any] | None = None) -> Catalogue:
    """``catalogue`` with an estate's own wording laid over it, checked."""
    where = f"estate {estate_id}"
    if template_dir:
        catalogue = message_templates.override_templates(catalogue, read_directory(template_dir), where)
    if templates:
        inline = {locale: message_templates.parse_templates(locale, document)
                  for locale, document in templates.items()}
        catalogue = message_templates.override_templates(catalogue, inline, where)
    _check(catalogue, where)
    return catalogue


def _check(catalogue: Catalogue, where: str) -> None:
    problems = notifications.check_templates(catalogue)
    if problems:
        raise message_templates.TemplateError(f"{where}: " + "; ".join(problems))
