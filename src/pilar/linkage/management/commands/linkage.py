"""``pilar linkage``: record linkage's batch runs from the command line.

    pilar linkage train [--sample N] [--seed S]         # a new model version from the registry
    pilar linkage dedupe [--model V] [--region JC] [--truth ground_truth.csv]
    pilar linkage link beneficiaries.csv [--name "..."] [--output result.xlsx]
    pilar linkage cross-programme PENSION_BIENESTAR IMSS_LEY97 [--output both.csv]
    pilar linkage blocking [--region JC] [--truth ground_truth.csv]   # counts only, writes nothing
    pilar linkage models                                # the saved versions
    pilar linkage model export 3 persons-v3.json
    pilar linkage model import persons-v3.json [--activate]
    pilar linkage model activate 3
    pilar linkage runs [--kind dedupe] [--limit 20]

Runs execute in this process, synchronously (no worker needed), through the same services and
job code as the web UI and the API, as a system actor with the data steward's role; each prints
a summary. Bad input (an unreadable list, an unknown programme, a model file from another
version) prints the reason, exits with status 1 and writes nothing. A run that fails while
executing is kept with its error (status ``failed``) and the command exits with status 1.

``--truth`` takes a ground-truth file of ``pilar seed`` (duplicate id, original id, …): the run
then reports pair completeness, precision, recall and F1.

The command line speaks English like Pilar's other commands; ``--language es`` gives the
services' messages in Spanish.
"""

from __future__ import annotations

import logging
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.core.roles import Role
from pilar.linkage import selectors_runs, services, sources, tasks
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus

CLI_ACTOR = Actor.system("pilar linkage", roles=frozenset({Role.DATA_STEWARD.value}))


def _error_text(error: ApplicationError) -> str:
    lines = [str(error.title) if isinstance(error, ValidationFailed) else str(error)]
    if isinstance(error, ValidationFailed):
        for field, errors in error.field_errors.items():
            lines.extend(f"  {field}: {item.message}" for item in errors)
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Record linkage: train a model, deduplicate the registry, link a list, check two "
        "programmes, analyse blocking, manage models."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--language", choices=("en", "es"), default="en", help="Language of the messages."
        )
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        def action(name: str, text: str) -> ArgumentParser:
            sub: ArgumentParser = actions.add_parser(name, help=text, description=text)
            return sub

        train = action("train", "Train a new model version on the registry.")
        train.add_argument("--sample", type=int, default=None, help="At most this many persons.")
        train.add_argument("--seed", type=int, default=services.TRAINING_SEED)

        dedupe = action("dedupe", "Deduplicate the registry with a model.")
        dedupe.add_argument(
            "--model", type=int, default=None, help="Model version (default: active)."
        )
        dedupe.add_argument("--region", default=None, help="Only one state's persons (e.g. JC).")
        dedupe.add_argument("--truth", type=Path, default=None, help="Ground-truth CSV.")
        dedupe.add_argument(
            "--output", type=Path, default=None, help="Write the pairs (.csv/.xlsx)."
        )

        link = action("link", "Link an external list (CSV or XLSX) to the registry.")
        link.add_argument("file", type=Path)
        link.add_argument("--name", default="", help="A name for the list.")
        link.add_argument("--output", type=Path, default=None, help="Write the results.")

        cross = action("cross-programme", "The persons receiving two programmes.")
        cross.add_argument("programme_a", help="Programme code.")
        cross.add_argument("programme_b", help="Programme code.")
        cross.add_argument("--output", type=Path, default=None, help="Write the results.")

        blocking = action("blocking", "Count the pairs each blocking rule generates.")
        blocking.add_argument("--region", default=None)
        blocking.add_argument("--truth", type=Path, default=None, help="Ground-truth CSV.")

        action("models", "List the saved model versions.")

        model = action("model", "Export, import or activate a model version.")
        model_actions = model.add_subparsers(dest="model_action", required=True, metavar="ACTION")
        export = model_actions.add_parser("export", help="Write a version's model file.")
        export.add_argument("version", type=int)
        export.add_argument("file", type=Path)
        imported = model_actions.add_parser("import", help="Save a model file as a new version.")
        imported.add_argument("file", type=Path)
        imported.add_argument("--activate", action="store_true")
        activate = model_actions.add_parser("activate", help="Make a version the active one.")
        activate.add_argument("version", type=int)

        runs = action("runs", "List recent runs.")
        runs.add_argument("--kind", default="", choices=["", *RunKind.values])
        runs.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        handlers = {
            "train": self._train,
            "dedupe": self._dedupe,
            "link": self._link,
            "cross-programme": self._cross,
            "blocking": self._blocking,
            "models": self._models,
            "model": self._model,
            "runs": self._runs,
        }
        # Splink's EM chatter only at -v 2 and above.
        level = logging.INFO if options["verbosity"] >= 2 else logging.ERROR
        with translation.override(options["language"]), tasks.quiet_splink(level):
            try:
                handlers[options["action"]](options)
            except ApplicationError as error:
                raise CommandError(_error_text(error)) from error

    # --- runs ---------------------------------------------------------------------------------

    def _execute(self, run: LinkageRun) -> LinkageRun:
        self.stdout.write(f"Run {run.pk} ({run.get_kind_display()}) started …")
        started = time.monotonic()
        done = tasks.run_execute(run.pk)
        if done.status != RunStatus.DONE:
            raise CommandError(f"Run {done.pk} failed: {done.error}")
        self.stdout.write(
            self.style.SUCCESS(f"Run {done.pk} done in {time.monotonic() - started:.1f} s.")
        )
        return done

    def _output(self, run: LinkageRun, path: Path | None) -> None:
        if path is None:
            return
        file_format = path.suffix.lower().lstrip(".")
        if file_format not in selectors_runs.FORMATS:
            raise CommandError("--output must end in .csv or .xlsx.")
        _name, _type, data = selectors_runs.run_download(
            actor=CLI_ACTOR, run_id=run.pk, file_format=file_format
        )
        path.write_bytes(data)
        self.stdout.write(f"Results written to {path}.")

    def _check_output(self, path: Path | None) -> None:
        # Checked before the run, so a typo in the file name does not waste a run.
        if path is not None and path.suffix.lower() not in (".csv", ".xlsx"):
            raise CommandError("--output must end in .csv or .xlsx.")

    def _train(self, options: dict[str, Any]) -> None:
        run = services.start_training(
            actor=CLI_ACTOR, sample=options["sample"], seed=options["seed"], enqueue=False
        )
        done = self._execute(run)
        model = done.model
        assert model is not None
        training = (model.summary or {}).get("training") or {}
        self.stdout.write(
            f"  model {model} saved ({'active' if model.is_active else 'not active'}); "
            f"trained on {training.get('records', done.records):,} of "
            f"{training.get('population', done.records):,} persons"
        )
        self.stdout.write(
            f"  thresholds: auto-link {model.auto_link_weight:.2f}, "
            f"review {model.review_weight:.2f}"
        )
        if not model.is_active:
            self.stdout.write(f"  activate it with: pilar linkage model activate {model.version}")

    def _model_id(self, version: int | None) -> int | None:
        if version is None:
            return None
        found = LinkageModel.objects.filter(name=services.MODEL_NAME, version=version).first()
        if found is None:
            raise CommandError(f"There is no model version {version}.")
        return found.pk

    def _dedupe(self, options: dict[str, Any]) -> None:
        self._check_output(options["output"])
        run = services.start_dedupe(
            actor=CLI_ACTOR,
            model_id=self._model_id(options["model"]),
            region=options["region"],
            truth_path=options["truth"],
            enqueue=False,
        )
        done = self._execute(run)
        metrics = done.metrics or {}
        self.stdout.write(
            f"  records {done.records:,}; pairs scored {done.pairs_scored:,}; "
            f"auto-linked {done.auto_linked:,}; for review {done.for_review:,}; "
            f"clusters {done.clusters:,} ({metrics.get('clustered_records', 0):,} records); "
            f"already decided {metrics.get('already_decided', 0):,}"
        )
        self._print_blocking(done.blocking or {})
        self._print_accuracy(metrics.get("accuracy"))
        self._output(done, options["output"])

    def _link(self, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        self._check_output(options["output"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        run, created = services.start_list_linkage(
            actor=CLI_ACTOR,
            file_name=path.name,
            data=path.read_bytes(),
            name=options["name"],
            enqueue=False,
        )
        if not created:
            self.stdout.write(f"This file was linked before: run {run.pk} ({run.status}).")
            done = tasks.run_execute(run.pk) if run.status == RunStatus.QUEUED else run
        else:
            done = self._execute(run)
        metrics = done.metrics or {}
        self.stdout.write(
            f"  rows {metrics.get('rows', 0):,}: matched {metrics.get('matched_rows', 0):,} "
            f"(auto-linked {metrics.get('auto_linked_rows', 0):,}, for review "
            f"{metrics.get('review_rows', 0):,}), no match {metrics.get('unmatched_rows', 0):,}, "
            f"skipped for errors {metrics.get('row_error_count', 0):,}"
        )
        for error in (metrics.get("row_errors") or [])[:10]:
            self.stdout.write(f"    row {error['row']}: {error['code']} {error.get('column', '')}")
        if done.status == RunStatus.DONE:
            self._output(done, options["output"])

    def _cross(self, options: dict[str, Any]) -> None:
        self._check_output(options["output"])
        run = services.start_cross_programme(
            actor=CLI_ACTOR,
            programme_a=options["programme_a"],
            programme_b=options["programme_b"],
            enqueue=False,
        )
        done = self._execute(run)
        metrics = done.metrics or {}
        self.stdout.write(
            f"  {done.source_name}: {metrics.get('a_records', 0):,} and "
            f"{metrics.get('b_records', 0):,} records; receiving both: "
            f"{metrics.get('result_rows', 0):,}"
        )
        for basis, count in (metrics.get("by_basis") or {}).items():
            self.stdout.write(f"    {basis}: {count:,}")
        if not metrics.get("model_used"):
            self.stdout.write("  (no active model: probable matches were not looked for)")
        self._output(done, options["output"])

    def _blocking(self, options: dict[str, Any]) -> None:
        from pilar.linkage.engine import engine_for
        from pilar.linkage.features import person_features

        truth = options["truth"]
        if truth is not None and not truth.is_file():
            raise CommandError(f"{truth} is not a file.")
        started = time.monotonic()
        persons = sources.registry_persons(region=options["region"])
        features = person_features(persons)
        result = tasks.blocking_summary(
            engine_for("duckdb"), features, tasks.read_truth(truth) if truth else None
        )
        self.stdout.write(
            f"{features.height:,} records, {time.monotonic() - started:.1f} s (nothing written):"
        )
        self._print_blocking(result)

    def _print_blocking(self, blocking: dict[str, Any]) -> None:
        rules = blocking.get("rules") or []
        if not rules:
            return
        width = max(len(str(rule["rule"])) for rule in rules)
        self.stdout.write(f"  {'blocking rule':<{width}}  {'pairs':>14}  {'cumulative':>14}")
        for rule in rules:
            completeness = rule.get("pair_completeness")
            extra = f"  pair completeness {completeness:.4f}" if completeness is not None else ""
            self.stdout.write(
                f"  {rule['rule']:<{width}}  {rule['pairs']:>14,}  {rule['cumulative']:>14,}{extra}"
            )

    def _print_accuracy(self, accuracy: dict[str, Any] | None) -> None:
        if not accuracy:
            return
        self.stdout.write(f"  truth pairs {accuracy['truth_pairs']:,}")
        for name in ("clusters", "stored_pairs"):
            figures = accuracy[name]
            self.stdout.write(
                f"  {name.replace('_', ' ')}: {figures['pairs']:,} pairs, "
                f"precision {figures['precision']:.4f}, recall {figures['recall']:.4f}, "
                f"F1 {figures['f1']:.4f}"
            )

    # --- models -------------------------------------------------------------------------------

    def _models(self, options: dict[str, Any]) -> None:
        models = selectors_runs.model_list(actor=CLI_ACTOR)
        if not models:
            self.stdout.write("No model yet: pilar linkage train")
            return
        for model in models:
            self.stdout.write(
                f"  {model.name} v{model.version}{'  (active)' if model.is_active else ''}  "
                f"auto-link {model.auto_link_weight:.2f}  review {model.review_weight:.2f}  "
                f"Splink {model.splink_version}  {model.created_at:%Y-%m-%d %H:%M}"
            )

    def _model(self, options: dict[str, Any]) -> None:
        action = options["model_action"]
        if action == "export":
            model_id = self._model_id(options["version"])
            assert model_id is not None
            _name, text = services.export_model(actor=CLI_ACTOR, model_id=model_id)
            options["file"].write_text(text, encoding="utf-8")
            self.stdout.write(f"Model v{options['version']} written to {options['file']}.")
        elif action == "import":
            path: Path = options["file"]
            if not path.is_file():
                raise CommandError(f"{path} is not a file.")
            model = services.import_model(
                actor=CLI_ACTOR, text=path.read_bytes(), activate=options["activate"]
            )
            self.stdout.write(
                self.style.SUCCESS(f"Saved as {model}{' (active)' if model.is_active else ''}.")
            )
        else:
            model_id = self._model_id(options["version"])
            assert model_id is not None
            model = services.activate_model(actor=CLI_ACTOR, model_id=model_id)
            self.stdout.write(self.style.SUCCESS(f"{model} is the active model."))

    def _runs(self, options: dict[str, Any]) -> None:
        page = selectors_runs.run_list(
            actor=CLI_ACTOR,
            kind=options["kind"],
            page=1,
            page_size=max(1, min(options["limit"], 100)),
        )
        if not page.items:
            self.stdout.write("No runs yet.")
        for run in page.items:
            self.stdout.write(
                f"  {run.pk:>6}  {run.kind:<16} {run.status:<8} {run.created_at:%Y-%m-%d %H:%M}  "
                f"records {run.records:,}  auto-linked {run.auto_linked:,}  "
                f"for review {run.for_review:,}  {run.source_name}"
            )
