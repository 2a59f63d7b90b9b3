"""Environment config: typed, and every mistake is one line naming the file and the key."""
from pathlib import Path

import pytest

from thinkfamily.config import load_env
from thinkfamily.errors import ConfigError


def write_env(tmp_path: Path, text: str) -> Path:
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "schemas").mkdir(exist_ok=True)
    p = tmp_path / "conf" / "test.yaml"
    p.write_text(text)
    return p


def test_shipped_envs_load(project_root):
    local = load_env("local", root=project_root)
    cluster = load_env("cluster", root=project_root)
    assert local.spark.master == "local[2]"
    assert local.lake == str(project_root / "lake")
    assert cluster.spark.master is None
    assert cluster.lake.startswith("s3a://")
    assert cluster.secrets.allow_default_key is False


def test_unknown_key_names_file_and_key(tmp_path):
    write_env(tmp_path, "name: t\nspark:\n  mastr: local[1]\n")
    with pytest.raises(ConfigError) as err:
        load_env("test", root=tmp_path)
    msg = str(err.value)
    assert "conf/test.yaml" in msg and "spark.mastr" in msg and "unknown key" in msg


def test_wrong_type_names_key(tmp_path):
    write_env(tmp_path, "name: t\ndq:\n  enabled: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"test.yaml: dq.enabled"):
        load_env("test", root=tmp_path)


def test_bad_literal_lists_choices(tmp_path):
    write_env(tmp_path, "name: t\nlinkage:\n  backend: postgres\n")
    with pytest.raises(ConfigError, match=r"linkage.backend: 'postgres' is not one of"):
        load_env("test", root=tmp_path)


def test_missing_file_lists_available(tmp_path):
    write_env(tmp_path, "name: t\n")
    with pytest.raises(ConfigError) as err:
        load_env("nope", root=tmp_path)
    assert "nope.yaml" in str(err.value) and "test" in str(err.value)


def test_invalid_yaml_gives_line(tmp_path):
    write_env(tmp_path, "name: t\nspark: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_env("test", root=tmp_path)


def test_pseudonymisation_key_comes_from_environment(project_root, monkeypatch):
    cluster = load_env("cluster", root=project_root)
    monkeypatch.delenv("THINKFAMILY_PSEUDO_KEY", raising=False)
    with pytest.raises(ConfigError, match="THINKFAMILY_PSEUDO_KEY"):
        cluster.pseudonymisation_key()
    monkeypatch.setenv("THINKFAMILY_PSEUDO_KEY", "s3cret")
    assert cluster.pseudonymisation_key() == b"s3cret"


def test_local_default_key_only_where_allowed(project_root, monkeypatch):
    monkeypatch.delenv("THINKFAMILY_PSEUDO_KEY", raising=False)
    local = load_env("local", root=project_root)
    assert local.uses_default_key and local.pseudonymisation_key()
