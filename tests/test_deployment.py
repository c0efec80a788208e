from pathlib import Path

import pytest

from pipeline.deployment import load_deployment
from pipeline.errors import ConfigError
from pipeline.models import LANGUAGES

REPO = Path(__file__).resolve().parent.parent

HEADER = """
timezone = "Asia/Ho_Chi_Minh"
[defaults]
slots = [{ name = "morning", start = "05:30", max_minutes = 30 }]
[[group]]
id = "bat-xat"
name = "TT Bát Xát"
"""


def write(tmp_path: Path, body: str, name: str = "a.toml") -> Path:
    d = tmp_path / "schedules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(HEADER + body if name == "a.toml" else body, encoding="utf-8")
    return d


def test_sample_deployment_is_lao_cai_sized() -> None:
    dep = load_deployment(REPO / "schedules")
    assert dep.timezone == "Asia/Ho_Chi_Minh"
    assert len(dep.communes) >= 12
    assert len(dep.groups) >= 3
    langs = {lang for c in dep.communes for lang in c.languages}
    assert langs == set(LANGUAGES)
    for c in dep.communes:
        assert [s.name for s in c.slots] == ["morning", "evening"]
        assert c.endpoints and all(e.transport == "local" for e in c.endpoints)
    assert dep.commune("02641") is not None
    assert dep.commune("02641").slot("evening").days == ("mon", "tue", "wed", "thu", "fri", "sat")  # type: ignore[union-attr]


def test_targets_resolve_all_groups_and_codes() -> None:
    dep = load_deployment(REPO / "schedules")
    assert len(dep.targeted(("all",))) == len(dep.communes)
    bat_xat = dep.targeted(("bat-xat",))
    assert bat_xat and all(c.group == "bat-xat" for c in bat_xat)
    assert [c.code for c in dep.targeted(("02803",))] == ["02803"]


COMMUNE = """
[[commune]]
code = "02641"
name = "Y Tý"
group = "bat-xat"
languages = ["vi", "hmn"]
"""

SFTP = """
  [[commune.endpoint]]
  name = "y-ty-1"
  transport = "sftp"
  host = "10.20.1.15"
  user = "loa"
  key_file = "/etc/loa/id_ed25519"
  remote_dir = "/srv/loa"
"""
KEY = 'host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (COMMUNE + COMMUNE, "code is used twice"),
        (COMMUNE.replace('"bat-xat"', '"sa-pa"'), "unknown group 'sa-pa'"),
        (COMMUNE.replace('"hmn"', '"fr"'), "languages: unknown language 'fr'"),
        (COMMUNE.replace('"02641"', '"2641"'), "commune[0] (Y Tý).code"),
        (COMMUNE + 'slots = [{ name = "m", start = "5h30", max_minutes = 30 }]\n', "is not a time of day"),
        (
            COMMUNE + 'slots = [{ name = "m", start = "05:30", max_minutes = 30, days = ["mon", "sun2"] }]\n',
            "unknown day 'sun2'",
        ),
        (COMMUNE + SFTP, "needs host_key"),
        (COMMUNE + SFTP + '  host_key = "not a key"\n', "host_key must look like"),
        (COMMUNE + '  [[commune.endpoint]]\n  name = "x"\n  transport = "local"\n', "needs path"),
        (COMMUNE + '  [[commune.endpoint]]\n  name = "x"\n  transport = "ftp"\n  path = "p"\n', "transport"),
        (
            COMMUNE + SFTP + "  " + KEY + COMMUNE.replace("02641", "02642") + SFTP + "  " + KEY,
            "endpoint 'y-ty-1': name is used twice",
        ),
        (COMMUNE + "colour = 1\n", "colour"),
    ],
)
def test_bad_deployments_name_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    d = write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_deployment(d)
    assert str(exc.value).startswith(str(d / "a.toml"))
    assert message in str(exc.value)


def test_files_are_merged_and_checked_together(tmp_path: Path) -> None:
    d = write(tmp_path, COMMUNE + SFTP + "  " + KEY)
    write(tmp_path, COMMUNE.replace("02641", "02642").replace("Y Tý", "A Mú Sung"), name="b.toml")
    dep = load_deployment(d)
    assert [c.code for c in dep.communes] == ["02641", "02642"]
    assert dep.endpoint("y-ty-1") is not None
    assert dep.communes[1].slots[0].name == "morning"  # defaults apply across files
    write(tmp_path, 'timezone = "Asia/Bangkok"\n', name="c.toml")
    with pytest.raises(ConfigError, match="differs from"):
        load_deployment(d)


def test_no_deployment_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no deployment files"):
        load_deployment(tmp_path)
