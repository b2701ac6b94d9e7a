"""Generate docs/policy.md: every rule number the services apply, its default, where it
comes from, and the setting that changes it.

    make contract     (a test fails when the committed file is stale)

Read from the code, not written beside it: each policy class's fields with their
defaults, and the comment above each field — a 「quoted」 policy line is the rule's
source; a comment without one is the group's own choice. A field with no comment of its
own shares the comment of the field just above it (``other_service_revisit_days`` and
``assistance_revisit_days`` come from one line).
"""
import dataclasses
import inspect
import json
import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")   # nameko imports it

from services.intake.policy import ComplaintPolicy
from services.notify import settings as notify_settings
from services.revisit import policies as revisit_policies
from services.survey.rounds import SurveyPolicy

QUOTE = re.compile(r"「[^」]*」")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    source: str          # the policy text's lines, or "" for the group's own choice
    note: str            # the comment's own words, without the quoted lines


@dataclass(frozen=True)
class Section:
    title: str
    group_key: str       # where the group sets it
    estate_key: str      # where one estate sets its own
    settings: tuple[Setting, ...]
    intro: str = ""


def sections() -> list[Section]:
    return [
        Section("Complaints (intake)", "COMPLAINT_POLICY",
                "ESTATE_POLICIES.<estate_id>, or the estate record's `policy` "
                "(`intake.update_estate`)",
                tuple(class_settings(ComplaintPolicy))),
        Section("Follow-up visits (revisit)", "REVISIT_POLICY",
                "REVISIT_ESTATE_POLICIES.<estate_id>",
                tuple(class_settings(revisit_policies.RevisitPolicy))
                + tuple(class_settings(revisit_policies.InHomeRepairShare,
                                       own_only=True, prefix="in_home_repairs_30: ")),
                intro=volume_table()),
        Section("Satisfaction surveys (survey)", "SURVEY_POLICY",
                "SURVEY_ESTATE_POLICIES.<estate_id>", tuple(class_settings(SurveyPolicy))),
        Section("Messages (notify)", "NOTIFY_<SETTING>",
                "NOTIFY_ESTATES.<estate_id>.<setting>", tuple(dict_settings(
                    notify_settings, "DEFAULTS", notify_settings.DEFAULTS)),
                intro="Each setting's key is its name in capitals after `NOTIFY_` "
                      "(`quiet_hours`: `NOTIFY_QUIET_HOURS`)."),
    ]


def class_settings(cls: type, own_only: bool = False, prefix: str = "") -> Iterator[Setting]:
    """Each setting of a policy dataclass, in the order the class lists them."""
    comments = _comments(inspect.getsource(cls))
    inherited = {item.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
                 for item in dataclasses.fields(base)} if own_only else set()
    for item in dataclasses.fields(cls):
        if not item.repr or item.name in inherited:    # internal (a built calendar)
            continue
        default = (item.default if item.default is not dataclasses.MISSING
                   else item.default_factory())
        yield _setting(prefix + item.name, default, comments.get(item.name, ""))


def dict_settings(module, name: str, defaults: dict) -> Iterator[Setting]:
    """Each key of a module's defaults dict, with the comment above it."""
    source = inspect.getsource(module)
    start = re.search(rf"^{name}\b[^=\n]*= {{", source, re.MULTILINE).start()
    comments = _comments(source[start:source.index("\n}", start) + 2])
    for key, default in defaults.items():
        yield _setting(key, default, comments.get(key, ""))


def _comments(source: str) -> dict[str, str]:
    """name -> the comment lines above it, or, with none, those of the setting it directly
    follows (no blank line between)."""
    found: dict[str, str] = {}
    gathered: list[str] = []
    previous = ""
    for line in textwrap.dedent(source).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            gathered.append(stripped.lstrip("#").strip())
            continue
        named = re.match(r'(\w+)\s*:|"(\w+)"\s*:', stripped)
        if named:                                     # a field, or a key of the dict
            key = named.group(1) or named.group(2)
            found[key] = " ".join(gathered) or (found.get(previous, "") if previous else "")
            previous = key
        elif not stripped.startswith((")", "]", "}", '"', "'")):   # not a value's next line
            previous = ""
        gathered = []
    return found


def _setting(name: str, default, comment: str) -> Setting:
    """A comment that opens with a quoted line: that line is the source, the rest says
    what the setting is; any other comment says it all (a line it quotes is its source)."""
    opening = QUOTE.match(comment)
    if opening:
        note = comment[opening.end():].strip(" :,.;-")
        return Setting(name, shown(default), opening.group(), note)
    quoted = QUOTE.search(comment)
    return Setting(name, shown(default), quoted.group() if quoted else "", comment)


def shown(value) -> str:
    """A default as config.yaml would take it."""
    if isinstance(value, MappingProxyType):
        value = dict(value)
    if isinstance(value, tuple) and value and hasattr(value[0], "role"):   # the ladder
        return " → ".join(f"{level.role} after {_hours(level.after)} h" for level in value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return str(int(hours)) if hours.is_integer() else str(hours)


def volume_table() -> str:
    """The work-order sampling table (``volume_table_quota``), as its docstring quotes it."""
    doc = inspect.getdoc(revisit_policies.volume_table_quota) or ""
    rows = [line.strip() for line in doc.splitlines() if line.strip().startswith("「")]
    steps = ", ".join(f"{orders} → {revisit_policies.volume_table_quota(orders)}"
                      for orders in (5, 19, 20, 50, 51, 100, 101, 500))
    return ("Work orders sampled each month per kind (the default policy's "
            "`volume_table_quota`, orders → revisits: " + steps + "):\n\n"
            + "\n".join(f"* {row}" for row in rows))


def render() -> str:
    out = ["# Policy settings", "",
           ("Every rule number the services apply, its default, where it comes from, and the "
           "setting that changes it. Generated from the code by `python -m "
           "scripts.policy_doc` (`make contract`); a test fails when this page is stale. "
           "\"The group's choice\" marks a number no policy text gives."), ""]
    for section in sections():
        out += [f"## {section.title}", "",
                (f"The group: `{section.group_key}` in config.yaml. One estate: "
                f"{_code(section.estate_key)}."), ""]
        if section.intro:
            out += [section.intro, ""]
        out += ["| setting | default | from | what it is |", "|---|---|---|---|"]
        for setting in section.settings:
            source = setting.source or "the group's choice"
            out.append(f"| `{setting.name}` | `{_cell(setting.default)}` | {_cell(source)} "
                       f"| {_cell(setting.note)} |")
        out.append("")
    return "\n".join(out)


def _code(text: str) -> str:
    """Config keys in backticks, the words between them not."""
    return re.sub(r"([A-Z_]{3,}[\w.<>_]*)", r"`\1`", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    sys.stdout.buffer.write(render().encode("utf-8"))
