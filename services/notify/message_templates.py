"""Message templates: an entry of a locale's template file checked and parsed, an estate's
own wording laid over the group's, and a message rendered and signed. Pure Python.

Policy text: 「接到客户投诉后,应首先向业主表示歉意」 — the acknowledgement apologises
first (the wording is in ``templates/<locale>.yaml``; which event uses which template is
``notifications.NOTIFICATIONS``).
"""
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Who reads a template: a household, or staff (any, by role, or a department's).
AUDIENCES = ("owner", "staff", "supervisor", "manager", "department")
TEMPLATE_KEYS = {"audience", "text", "subject", "labels", "mandatory", "immediate", "link"}
# How the sender's name (物业名) is shown: carriers want 【签名】 on Chinese SMS.
SIGNATURE_FORMATS = {"zh": "【{}】", "en": "[{}] "}
# Between a text and its link: Chinese text ends in full-width punctuation already.
LINK_SEPARATORS = {"zh": ""}

Labels = dict[str, dict[str, str]]   # param -> {value: display text}
Catalogue = dict[str, dict[str, "Template"]]   # {locale: {template id: Template}}


class TemplateError(ValueError):
    """A template file or entry that cannot be used."""


class MissingParameters(TemplateError):
    def __init__(self, template_id: str, missing: Iterable[str]) -> None:
        self.template_id, self.missing = template_id, list(missing)
        super().__init__(f"template {template_id} needs {', '.join(self.missing)}")


@dataclass(frozen=True)
class Template:
    id: str
    locale: str
    audience: str
    text: str
    labels: Labels = field(default_factory=dict)
    subject: str | None = None                   # e-mail subject line
    mandatory: bool = False    # a notice the household cannot opt out of
    immediate: bool = False    # answers the owner's own request: quiet hours do not hold it
    # Ends the text when its parameters are known (the owner's page, from the contact); a
    # message without them goes without it rather than not at all.
    link: str | None = None

    @property
    def params(self) -> frozenset[str]:
        """What the text and subject need: a message without any of them cannot go."""
        return placeholders(self.text) | placeholders(self.subject or "")

    @property
    def link_params(self) -> frozenset[str]:
        return placeholders(self.link or "")


def placeholders(text: str) -> frozenset[str]:
    """The parameter names ``text`` uses; only plain names (no attribute or index access)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template text: {exc}") from None
    names = set()
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier() or "{" in (spec or ""):
            raise TemplateError(f"placeholder {{{name}}} must be a plain name")
        names.add(name)
    return frozenset(names)


def parse_templates(locale: str, document: object) -> dict[str, Template]:
    """One locale's template file (already parsed YAML) as {template id: Template}."""
    if not isinstance(document, dict):
        raise TemplateError(f"{locale}: expected a mapping of template ids")
    return {str(template_id): parse_template(locale, str(template_id), entry)
            for template_id, entry in document.items()}


def parse_template(locale: str, template_id: str, entry: object) -> Template:
    """One entry of a locale's template file as a Template; a TemplateError names the
    entry (``locale/id``) and what is wrong with it."""
    where = f"{locale}/{template_id}"
    problem = _entry_problem(entry)
    if problem or not isinstance(entry, dict):   # (not a dict is a problem named)
        raise TemplateError(f"{where}: {problem}")
    labels = entry.get("labels") or {}
    template = Template(
        id=template_id, locale=locale, audience=entry["audience"], text=entry["text"].strip(),
        labels={name: {str(k): str(v) for k, v in values.items()}
                for name, values in labels.items()},
        subject=entry.get("subject"), mandatory=entry.get("mandatory", False),
        immediate=entry.get("immediate", False), link=(entry.get("link") or "").strip() or None,
    )
    try:
        placeholders(template.text), placeholders(template.subject or ""), template.link_params
    except TemplateError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    return template


def _entry_problem(entry: object) -> str | None:
    """What makes a template entry unusable (the first thing found), or None."""
    if not isinstance(entry, dict) or set(entry) - TEMPLATE_KEYS:
        return f"expected only {', '.join(sorted(TEMPLATE_KEYS))}"
    if entry.get("audience") not in AUDIENCES:
        return f"audience must be one of {', '.join(AUDIENCES)}"
    for key in ("text", "subject", "link"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            return f"{key} must be non-empty text"
    if "text" not in entry:
        return "text is missing"
    for key in ("mandatory", "immediate"):
        if not isinstance(entry.get(key, False), bool):
            return f"{key} must be true or false"
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        return "labels map a parameter to {value: text}"
    return None


def override_templates(catalogue: Mapping[str, Mapping[str, Template]],
                       overrides: Mapping[str, Mapping[str, Template]], where: str) -> Catalogue:
    """``catalogue`` with some templates replaced (an estate's own wording).

    An override may only replace a template that exists: a misspelt id would
    otherwise be silently ignored.
    """
    merged = {locale: dict(templates) for locale, templates in catalogue.items()}
    for locale, templates in overrides.items():
        if locale not in merged:
            raise TemplateError(f"{where}: no base templates for locale {locale!r}")
        for template_id, template in templates.items():
            if template_id not in merged[locale]:
                raise TemplateError(f"{where}: {locale}/{template_id} overrides no template")
            merged[locale][template_id] = template
    return merged


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str


def render(template: Template, params: Mapping[str, Any], signature: str) -> Rendered:
    """The message, signed. A missing or blank parameter raises: an SMS never shows a gap.

    The signature (【物业名】) is part of the text: it is what the owner reads
    and what the carrier counts.
    """
    missing = sorted(name for name in template.params if _blank(params.get(name)))
    if missing:
        raise MissingParameters(template.id, missing)
    values = {
        name: template.labels.get(name, {}).get(str(params[name]), params[name])
        for name in template.params | template.link_params if not _blank(params.get(name))
    }
    body = template.text.format_map(values)
    if template.link and template.link_params <= set(values):
        body += LINK_SEPARATORS.get(template.locale, " ") + template.link.format_map(values)
    subject = template.subject.format_map(values) if template.subject else signature
    return Rendered(text=sign(body, signature, template.locale), subject=subject)


def sign(text: str, signature: str, locale: str) -> str:
    return SIGNATURE_FORMATS.get(locale, SIGNATURE_FORMATS["zh"]).format(signature) + text


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
