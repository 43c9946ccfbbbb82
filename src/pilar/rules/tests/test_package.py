"""Packages: content hash, the publication register, versions, the cache, no Django."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pilar.rules import (
    SCHEMES_DIR,
    PackageIntegrityError,
    PackageNotFoundError,
    UnknownNameError,
    available_packages,
    load_package,
    package_hash,
    publish,
)
from pilar.rules.package import PackageRef, read_register, version_key
from pilar.rules.tests.packages import FIXTURES, package_copy


def test_the_schemes_folder_is_inside_the_package() -> None:
    assert Path(__file__).resolve().parents[1] / "schemes" == SCHEMES_DIR


def test_the_content_hash_is_the_one_the_spec_defines(tmp_path: Path) -> None:
    folder = package_copy(tmp_path)
    digest = hashlib.sha256()
    for name in ("package.yaml", "parameters.yaml", "variables.yaml"):
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    assert package_hash(folder) == digest.hexdigest()
    assert load_package(path=folder).content_hash == digest.hexdigest()


def test_tests_and_other_files_are_not_part_of_the_hash(tmp_path: Path) -> None:
    folder = package_copy(tmp_path)
    before = package_hash(folder)
    (folder / "tests").mkdir()
    (folder / "tests" / "cases.yaml").write_text("cases: []\n", encoding="utf-8")
    (folder / "README.md").write_text("notes\n", encoding="utf-8")
    assert package_hash(folder) == before
    (folder / "notes").mkdir()
    (folder / "notes" / "extra.yaml").write_text("a: 1\n", encoding="utf-8")
    assert package_hash(folder) != before


def test_renaming_a_file_changes_the_hash(tmp_path: Path) -> None:
    first = package_copy(tmp_path / "a")
    second = package_copy(tmp_path / "b")
    (second / "variables.yaml").rename(second / "tables.yaml")
    assert package_hash(first) != package_hash(second)


class TestIntegrity:
    def test_a_published_package_whose_files_changed_is_refused(self) -> None:
        with pytest.raises(PackageIntegrityError) as caught:
            load_package("tampered", schemes_dir=FIXTURES)
        error = caught.value
        register = read_register(FIXTURES)
        assert error.params["expected"] == register["tampered"]["1.0.0"]
        assert error.params["actual"] == package_hash(FIXTURES / "tampered" / "1.0.0")
        assert error.location == "tampered/1.0.0/package.yaml"
        assert "create a new version" in error.message("en")
        assert "cree una versión nueva" in error.message("es")

    def test_loading_by_path_checks_the_register_beside_it(self) -> None:
        with pytest.raises(PackageIntegrityError):
            load_package(path=FIXTURES / "tampered" / "1.0.0")

    def test_an_unchanged_published_package_loads(self) -> None:
        package = load_package("minimal", schemes_dir=FIXTURES)
        assert package.content_hash == read_register(FIXTURES)["minimal"]["1.0.0"]

    def test_a_cached_package_is_held_to_a_register_written_later(self, tmp_path: Path) -> None:
        folder = package_copy(tmp_path)
        load_package("minimal", schemes_dir=tmp_path)
        (tmp_path / "published.yaml").write_text(f'minimal:\n  "1.0.0": "{"f" * 64}"\n')
        with pytest.raises(PackageIntegrityError):
            load_package("minimal", schemes_dir=tmp_path)
        assert package_hash(folder) != "f" * 64

    def test_an_unpublished_package_loads_without_a_register_entry(self) -> None:
        assert "runtime_errors" not in read_register(FIXTURES)
        assert load_package("runtime_errors", schemes_dir=FIXTURES).name == "runtime_errors"


class TestPublish:
    def test_publish_records_the_hash_and_makes_the_version_immutable(self, tmp_path: Path) -> None:
        folder = package_copy(tmp_path)
        digest = publish("minimal", "1.0.0", schemes_dir=tmp_path)
        assert digest == package_hash(folder)
        assert read_register(tmp_path) == {"minimal": {"1.0.0": digest}}
        register_text = (tmp_path / "published.yaml").read_text(encoding="utf-8")
        assert publish("minimal", "1.0.0", schemes_dir=tmp_path) == digest
        assert (tmp_path / "published.yaml").read_text(encoding="utf-8") == register_text
        variables = folder / "variables.yaml"
        variables.write_text(
            variables.read_text(encoding="utf-8").replace("Monto mensual", "Monto"),
            encoding="utf-8",
        )
        with pytest.raises(PackageIntegrityError):
            load_package("minimal", "1.0.0", schemes_dir=tmp_path)
        with pytest.raises(PackageIntegrityError):
            publish("minimal", "1.0.0", schemes_dir=tmp_path)
        assert (tmp_path / "published.yaml").read_text(encoding="utf-8") == register_text

    def test_versions_are_kept_in_order_and_quoted(self, tmp_path: Path) -> None:
        for version in ("1.10.0", "1.9.0"):
            package_copy(tmp_path, version=version)
            publish("minimal", version, schemes_dir=tmp_path)
        package_copy(tmp_path, source="lss_demo")
        publish("lss_demo", "1.0.0", schemes_dir=tmp_path)
        text = (tmp_path / "published.yaml").read_text(encoding="utf-8")
        assert text.index("lss_demo:") < text.index("minimal:")
        assert text.index('"1.9.0"') < text.index('"1.10.0"')
        assert set(read_register(tmp_path)["minimal"]) == {"1.9.0", "1.10.0"}

    def test_a_package_that_does_not_load_is_not_published(self, tmp_path: Path) -> None:
        package_copy(tmp_path, replace={"variables.yaml": [("monto_base", "monto_bas")]})
        with pytest.raises(UnknownNameError):
            publish("minimal", "1.0.0", schemes_dir=tmp_path)
        assert not (tmp_path / "published.yaml").exists()

    def test_an_unknown_package_is_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(PackageNotFoundError):
            publish("nada", "1.0.0", schemes_dir=tmp_path)


class TestVersions:
    def test_semantic_version_order(self) -> None:
        ordered = [
            "0.9.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ]
        shuffled = ordered[::2] + ordered[1::2]
        assert sorted(shuffled, key=lambda v: version_key(v) or ()) == ordered
        assert version_key("latest") is None
        assert version_key("1.0") is None

    def test_without_a_version_the_newest_loads(self, tmp_path: Path) -> None:
        for version in ("1.2.0", "1.10.0", "1.9.0"):
            package_copy(tmp_path, version=version)
        (tmp_path / "minimal" / "borrador").mkdir()
        assert load_package("minimal", schemes_dir=tmp_path).version == "1.10.0"
        assert load_package("minimal", "1.2.0", schemes_dir=tmp_path).version == "1.2.0"
        assert available_packages(schemes_dir=tmp_path) == [
            PackageRef("minimal", "1.2.0"),
            PackageRef("minimal", "1.9.0"),
            PackageRef("minimal", "1.10.0"),
        ]

    def test_an_unknown_name_or_version_is_not_found(self, tmp_path: Path) -> None:
        package_copy(tmp_path)
        with pytest.raises(PackageNotFoundError):
            load_package("nada", schemes_dir=tmp_path)
        with pytest.raises(PackageNotFoundError) as caught:
            load_package("minimal", "9.9.9", schemes_dir=tmp_path)
        assert "minimal 9.9.9" in caught.value.message("en")


class TestCache:
    def test_an_unchanged_package_is_parsed_once(self) -> None:
        first = load_package("minimal", schemes_dir=FIXTURES)
        assert load_package("minimal", "1.0.0", schemes_dir=FIXTURES) is first
        assert load_package(path=FIXTURES / "minimal" / "1.0.0") is first

    def test_a_changed_package_is_loaded_afresh(self, tmp_path: Path) -> None:
        folder = package_copy(tmp_path)
        first = load_package(path=folder)
        parameters = folder / "parameters.yaml"
        parameters.write_text(
            parameters.read_text(encoding="utf-8").replace("value: 1500", "value: 1600"),
            encoding="utf-8",
        )
        second = load_package(path=folder)
        assert second is not first
        assert second.content_hash != first.content_hash
        result = second.evaluate({"edad": 70}, on=datetime.date(2024, 1, 1))
        assert result.values["monto"] == 1600


def test_the_engine_imports_and_runs_without_django() -> None:
    script = textwrap.dedent(
        f"""
        import datetime, sys
        import polars as pl
        from pilar.rules import load_package, render_text
        package = load_package("minimal", schemes_dir={str(FIXTURES)!r})
        result = package.evaluate({{"edad": 70}}, on=datetime.date(2024, 1, 1))
        render_text(result, "es")
        package.evaluate_bulk(pl.DataFrame({{"edad": [70]}}), on=datetime.date(2024, 1, 1))
        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "django")
        assert not loaded, loaded
        """
    )
    completed = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert completed.returncode == 0, completed.stderr
