"""docs/policy.md lists every policy setting the services have, with its default and
source, and is what the code says today."""
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from scripts import policy_doc
from services.notify.settings import CONFIG_KEYS
from services.revisit.policies import GROUP

ROOT = Path(__file__).resolve().parents[2]


def listed() -> set[str]:
    return {setting.name.split(": ")[-1] for section in policy_doc.sections()
            for setting in section.settings}


def test_the_page_is_what_the_code_says():
    committed = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert committed == policy_doc.render(), "docs/policy.md is stale: run `make contract`"


def test_every_setting_config_yaml_gives_is_on_the_page():
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    given = set(config["COMPLAINT_POLICY"]) | set(config["SURVEY_POLICY"]) \
        | (set(config["REVISIT_POLICY"]) - {"policy"})   # `policy` names the plug-in
    given |= {CONFIG_KEYS[key] for key in config if key in CONFIG_KEYS} - {"estates",
                                                                        "survey_base_url"}
    assert given - listed() == set()


def test_every_installed_revisit_policys_settings_are_on_the_page():
    import dataclasses
    for entry in entry_points(group=GROUP):
        own = {item.name for item in dataclasses.fields(entry.load()) if item.repr}
        assert own - listed() == set(), entry.name


def test_every_setting_of_the_policy_classes_and_notify_is_on_the_page():
    """Not only those config.yaml gives: a setting left at its default there is one too."""
    import dataclasses

    from services.intake.policy import ComplaintPolicy
    from services.survey.rounds import SurveyPolicy
    own = {item.name for cls in (ComplaintPolicy, SurveyPolicy)
           for item in dataclasses.fields(cls) if item.repr}
    own |= set(CONFIG_KEYS.values()) - {"estates", "survey_base_url"}   # not rule numbers
    assert own - listed() == set()


def test_a_setting_quoting_a_policy_line_names_it_as_its_source():
    settings = {setting.name: setting for section in policy_doc.sections()
                for setting in section.settings}
    assert settings["first_response_working_days"].source.startswith("「所有投诉")
    assert settings["repeat_window_days"].source == ""        # the group's own choice
    # a setting without a comment of its own shares the one above it
    assert settings["assistance_revisit_days"].source == \
        settings["other_service_revisit_days"].source != ""
