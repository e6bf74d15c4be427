"""Bad data: a column never changes kind without a word, and predict/evaluate hold new data to
the kinds a run was trained with.

Recipe-time cases reuse the corpus runner of `test_bad_input` (exit code, `FILE:LINE: key`
message, no traceback, no run marked completed). Predict and evaluate cases share one tiny
trained run (a date column read as `datetime_parts`) and also check that nothing is lost: a
refused command writes no output file and leaves the run's earlier evaluation as it was.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mtl_runner.cli import cli
from tests.conftest import TINY_RECIPE, make_table
from tests.integration.test_bad_input import Case, check, params, prepare, table_with, tiny


def strays(column: str, rows: list[int], value: Any = "n/a?") -> Callable[[pd.DataFrame], Any]:
    """`column` with `value` written into `rows` (a mostly numeric column with a few words)."""

    def change(frame: pd.DataFrame):
        values = frame[column].astype(object)
        values[rows] = value
        return values

    return change


def dates(frame: pd.DataFrame) -> list[str]:
    return [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:15" for i in range(len(frame))]


def parquet_with(**columns: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frame = make_table()
        for name, values in columns.items():
            frame[name] = values(frame) if callable(values) else values
        frame.to_parquet(path, index=False)

    return write


def csv_text(**options: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        make_table().to_csv(path, **{"index": False, **options})

    return write


PARQUET = {"data.source": "parquet", "data.path": "table.parquet"}
OWN_DATA = tiny({"data.exclude": ["tags", "target"],
                 "tasks.target.data": {"source": "csv", "path": "other.csv",
                                       "exclude": ["tags", "kind", "flag"]}})

CASES = [
    # -- item 5: a mostly numeric column --------------------------------------------------------
    Case("mostly-numeric-with-3-words", tiny(),
         (r"{recipe}:2: data: feature column 'x1' is mostly numeric, but 3 of 64 non-empty cells "
          r"are not numbers", r"Received: 'n/a\?'", "data.bad_cells: missing"),
         files={"table.csv": table_with(x1=strays("x1", [4, 9, 20]))}),
    Case("mostly-numeric-listed-feature", tiny({"data.features": ["x2", "x1", "colour"]}),
         (r"{recipe}:\d+: data.features.1: feature column 'x1' is mostly numeric",
          r"'n/a\?', '-', '\?\?'"),
         files={"table.csv": table_with(x1=lambda f: strays("x1", [2, 3])(f).where(
             ~f.index.isin([30]), "-").where(~f.index.isin([40]), "??"))}),
    Case("mostly-numeric-validate", tiny(), (r"{recipe}:2: data: feature column 'x2' is mostly "
                                             "numeric", "1 of 63 non-empty"),
         command="validate", files={"table.csv": table_with(x2=strays("x2", [7], "?"))}),
    Case("three-quarters-numeric-column", tiny(),
         (r"{recipe}:2: data: feature column 'x1' is numeric \(48 distinct numbers\), but 16 of "
          "64 non-empty cells are not numbers", "'unknown'", "data.categorical"),
         files={"table.csv": table_with(x1=strays("x1", list(range(0, 64, 4)), "unknown"))}),
    Case("forty-percent-numeric-column", tiny(),
         (r"feature column 'x1' is numeric \(26 distinct numbers\), but 38 of 64", "'n.a.'",),
         files={"table.csv": table_with(x1=strays("x1", list(range(38)), "n.a."))}),
    Case("numbers-with-units", tiny(), (r"feature column 'x1' is text with \d+ distinct values",
                                        r"'-?\d\.\d\dcm'"),
         files={"table.csv": table_with(x1=lambda f: [f"{v:.2f}cm" for v in f["x1"]])}),
    Case("own-task-data-same-rules", OWN_DATA,
         (r"{recipe}:\d+: tasks.target.data: feature column 'x1' is mostly numeric",),
         files={"other.csv": lambda p: make_table(seed=3).assign(
             x1=lambda f: strays("x1", [1, 2])(f)).to_csv(p, index=False)}),

    # -- item 5: csv options ----------------------------------------------------------------------
    Case("semicolon-csv", tiny(), (r"{recipe}:2: data.csv.sep: .*table.csv: the header has 1 "
                                   r"column\(s\) when split on ',', but 7 when split on ';'",
                                   'Set data.csv.sep: ";"'),
         files={"table.csv": csv_text(sep=";")}),
    Case("tab-separated-csv", tiny(), (r"data.csv.sep: .*but 7 when split on '\\t'",
                                       r'data.csv.sep: "\\t"'),
         files={"table.csv": csv_text(sep="\t")}),
    Case("decimal-comma-without-decimal", tiny({"data.csv": {"sep": ";"}}),
         (r"{recipe}:2: data: feature column 'x1' holds numbers written with a decimal comma",
          'data.csv.decimal: ","'),
         files={"table.csv": csv_text(sep=";", decimal=",")}),
    Case("latin-1-file", tiny(), (r"data.path: .*not utf-8 text", "data.csv.encoding"),
         files={"table.csv": lambda p: p.write_bytes(
             make_table().assign(colour=lambda f: f["colour"] + "\u00e9").to_csv(index=False)
             .encode("latin-1"))}),
    Case("unknown-encoding", tiny({"data.csv": {"encoding": "utf-9"}}),
         (r"{recipe}:\d+: data.csv: unknown encoding", "latin-1"), command="validate"),
    Case("sep-equals-decimal", tiny({"data.csv": {"sep": ",", "decimal": ","}}),
         (r"{recipe}:\d+: data.csv: sep and decimal must differ",), command="validate"),
    Case("csv-options-on-parquet", tiny({**PARQUET, "data.csv": {"sep": ";"}}),
         (r"{recipe}:\d+: data: `csv` options apply to source: csv",), command="validate",
         files={"table.parquet": parquet_with()}),

    # -- item 5: headers --------------------------------------------------------------------------
    Case("duplicate-header", tiny(), (r"{recipe}:\d+: data.path: .*header names a column more "
                                      "than once: 'x1'", "its own name"),
         files={"table.csv": lambda p: p.write_text(
             make_table().to_csv(index=False).replace("x1,x2", "x1,x1", 1))}),
    Case("duplicate-header-parquet", tiny(PARQUET), (r"data.path: .*more than once: 'x1'",),
         files={"table.parquet": lambda p: __import__("pyarrow.parquet").parquet.write_table(
             __import__("pyarrow").table([[1.0, 2.0], [3.0, 4.0], ["a", "b"]],
                                         names=["x1", "x1", "kind"]), p)}),
    Case("unnamed-index-column", tiny(), (r"{recipe}:2: data: column 'Unnamed: 0' has no name",
                                          r"data.exclude: \['Unnamed: 0'\]"),
         files={"table.csv": csv_text(index=True)}),
    Case("npz-flattened-name-clash", tiny({"data.source": "npz", "data.path": "table.npz"}),
         (r"data.path: .*array 'x' flattens into a column 'x_0'",),
         files={"table.npz": lambda p: np.savez(p, x=np.zeros((4, 2)), x_0=np.ones(4),
                                                 kind=np.array(["a", "b"] * 2))}),

    # -- item 5: dates and lists need a choice --------------------------------------------------
    Case("date-column-in-csv", tiny(), (r"{recipe}:2: data: feature column 'when' holds dates "
                                        r"\(64 cells\)", "data.columns: {when: datetime_parts"),
         files={"table.csv": table_with(when=dates)}),
    Case("datetime-column-in-parquet", tiny(PARQUET),
         (r"data: feature column 'when' holds dates", r"Received: '2024-01-01', '2024-01-02'"),
         files={"table.parquet": parquet_with(when=lambda f: pd.date_range(
             "2024-01-01", periods=len(f), freq="D"))}),
    Case("list-column-in-parquet", tiny(PARQUET),
         (r"data: feature column 'items' holds lists", "list_join | list_length"),
         files={"table.parquet": parquet_with(items=lambda f: [[1, 2][: 1 + i % 2]
                                                               for i in range(len(f))])}),
    Case("datetime-choice-on-numbers", tiny({"data.columns": {"x1": "datetime_parts"}}),
         (r"{recipe}:\d+: data.columns.x1: datetime_parts needs a column of dates; 'x1' holds "
          "numeric values",),),
    Case("columns-names-unknown-column", tiny({"data.columns": {"whn": "datetime_ordinal"}}),
         (r"{recipe}:\d+: data.columns.whn: 'whn' is not a column", "Did you mean 'when'"),
         files={"table.csv": table_with(when=dates)}),
    Case("columns-unknown-choice", tiny({"data.columns": {"when": "datetime_part"}}),
         (r"{recipe}:\d+: data.columns.when: unknown value", "Did you mean 'datetime_parts'"),
         command="validate"),
    Case("ambiguous-day-month-dates", tiny({"data.columns": {"when": "datetime_parts"}}),
         (r"data.columns.when: column 'when': dates written like 0?1/0?\d/\.\.\. could be "
          "day/month or month/day", "YYYY-MM-DD"),
         files={"table.csv": table_with(when=lambda f: [f"{1 + i % 12:02d}/{1 + i % 12:02d}/2024"
                                                        for i in range(len(f))])}),
    Case("dates-with-stray-cells", tiny({"data.columns": {"when": "datetime_ordinal"}}),
         (r"data.columns.when: feature column 'when' is a column of dates, but 2 of 64 non-empty "
          "cells are not dates", r"'soon'"),
         files={"table.csv": table_with(when=lambda f: strays("when", [5, 6], "soon")(
             f.assign(when=dates(f))))}),
    Case("kinds-differ-between-sources",
         tiny({"data.exclude": ["tags", "target"],
               "tasks.target.data": {"source": "csv", "path": "other.csv",
                                     "exclude": ["tags", "kind", "flag"], "categorical": ["x2"]}}),
         (r"tasks.target.data: feature column 'x2' is categorical here but numeric in data",),
         files={"other.csv": lambda p: make_table(seed=3).to_csv(p, index=False)}),
]


def test_the_data_corpus_is_large_and_named_uniquely():
    ids = [case.id for case in CASES]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", params(CASES))
def test_bad_data_is_refused_clearly(case: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe, args = prepare(case, tmp_path)
    outcome = CliRunner().invoke(cli, args)
    output = outcome.output
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(outcome.exception))
    check(case, tmp_path, recipe, outcome.exit_code, output)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


# -- what the rules allow, and how it trains ----------------------------------------------------
def test_bad_cells_missing_reads_them_as_missing_and_says_how_many(tmp_path):
    from mtl_runner.recipe import load_recipe

    frame = make_table().assign(x1=strays("x1", [4, 9, 20]))
    frame.to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "r.yaml").write_text(tiny({"data.bad_cells": "missing"}))
    outcome = CliRunner().invoke(cli, ["validate", str(tmp_path / "r.yaml")])
    assert outcome.exit_code == 0, outcome.output
    assert "Warning:" in outcome.output and "'x1': 3 of 64 cells are not numbers ('n/a?')" \
        in outcome.output
    loaded = load_recipe(tmp_path / "r.yaml")
    x1 = loaded.frame["x1"]
    assert x1.dtype == "float64" and x1.isna().sum() == 3 and x1[[4, 9, 20]].isna().all()
    # a run keeps the warning with its results
    trained = CliRunner().invoke(cli, ["train", str(tmp_path / "r.yaml"), "--results",
                                       str(tmp_path / "results"), "--set", "training.epochs=1"])
    assert trained.exit_code == 0, trained.output
    [run] = list((tmp_path / "results").iterdir())
    warnings = json.loads((run / "run.json").read_text())["warnings"]
    assert len([w for w in warnings if "'x1': 3 of 64 cells are not numbers" in w]) == 1


def test_datetime_parts_and_semicolon_decimal_comma_csv_are_read_as_numbers(tmp_path):
    from mtl_runner.recipe import load_recipe
    from mtl_runner.training.prepare import prepare as prepare_data

    frame = make_table().assign(when=dates)
    frame.to_csv(tmp_path / "table.csv", index=False, sep=";", decimal=",")
    (tmp_path / "r.yaml").write_text(tiny({"data.csv": {"sep": ";", "decimal": ","},
                                           "data.columns": {"when": "datetime_parts"}}))
    loaded = load_recipe(tmp_path / "r.yaml")
    assert np.allclose(loaded.frame["x1"], frame["x1"])
    prepared = prepare_data(loaded.frame, loaded.recipe, loaded.frames)
    assert prepared.spec.numeric == ["x1", "x2", "when_year", "when_month", "when_day",
                                     "when_weekday", "when_hour"]
    assert prepared.spec.categorical == ["colour"]
    assert loaded.frame["when_hour"].tolist()[:3] == [0.0, 1.0, 2.0]


def test_a_categorical_column_with_a_gap_keeps_the_same_categories():
    from mtl_runner.data.features import categories

    with_gap = pd.Series([1.0, 2.0, np.nan])
    assert categories(with_gap).tolist() == categories(pd.Series([1, 2, 3]))[:2].tolist() + [""]


# -- item 6: predict and evaluate ----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run with a date column read as datetime_parts, and a copy of it whose recipe
    reads bad cells as missing (`data.bad_cells: missing`)."""
    folder = tmp_path_factory.mktemp("kinds")
    make_table().assign(when=dates).to_csv(folder / "table.csv", index=False)
    (folder / "recipe.yaml").write_text(tiny({"data.columns": {"when": "datetime_parts"},
                                              "training.epochs": 1}))
    results = folder / "results"
    outcome = CliRunner().invoke(cli, ["train", str(folder / "recipe.yaml"), "--results",
                                       str(results)])
    assert outcome.exit_code == 0, outcome.output
    [run] = [p for p in results.iterdir() if p.is_dir()]
    lenient = results / (run.name + "-lenient")
    shutil.copytree(run, lenient)
    text = (lenient / "recipe.yaml").read_text()
    assert "bad_cells: error" in text
    (lenient / "recipe.yaml").write_text(text.replace("bad_cells: error", "bad_cells: missing"))
    return folder, run, lenient


def new_rows(rows: int = 24, **columns: Any) -> pd.DataFrame:
    frame = make_table(rows=rows, seed=5).assign(when=dates)
    for name, values in columns.items():
        frame[name] = values(frame) if callable(values) else values
    return frame


@dataclasses.dataclass
class UseCase:
    id: str
    command: str                      # predict | evaluate
    write: Callable[[Path], None]     # writes the --data file
    expect: tuple[str, ...]
    code: int = 2
    data: str = "new.csv"
    lenient: bool = False             # use the run whose recipe has data.bad_cells: missing


def csv_of(frame_or_fn, **options) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frame = frame_or_fn() if callable(frame_or_fn) else frame_or_fn
        frame.to_csv(path, index=False, **options)

    return write


USE_CASES = [
    UseCase("predict-numbers-with-units", "predict",
            csv_of(lambda: new_rows(x1=lambda f: [f"{v:.2f}cm" for v in f["x1"]])),
            (r"new.csv: feature column 'x1' was numeric in training, but 24 of 24 non-empty cells "
             r"here are not numbers", r"Received: '-?\d\.\d\dcm'")),
    UseCase("predict-mostly-numeric", "predict",
            csv_of(lambda: new_rows(x2=strays("x2", [1, 2], "n/a?"))),
            (r"feature column 'x2' is mostly numeric, but 2 of 23 non-empty cells are not numbers",
             r"'n/a\?'", "only when trained with data.bad_cells: missing")),
    UseCase("predict-decimal-comma", "predict",
            csv_of(lambda: new_rows(x1=lambda f: [f"{v:.2f}".replace(".", ",") for v in f["x1"]])),
            (r"feature column 'x1' was numeric in training", "with a '.' decimal mark")),
    UseCase("predict-semicolon-file", "predict", csv_of(lambda: new_rows(), sep=";"),
            (r"new.csv: the header has 1 column\(s\) when split on ',', but 8 when split on ';'",
             r"Save it separated by ','")),
    UseCase("predict-duplicate-header", "predict",
            lambda p: p.write_text(new_rows().to_csv(index=False).replace("x1,x2", "x1,x1", 1)),
            (r"header names a column more than once: 'x1'",)),
    UseCase("predict-dates-with-words", "predict",
            csv_of(lambda: new_rows(when=lambda f: strays("when", [3], "tomorrow")(
                f.assign(when=dates(f))))),
            (r"feature column 'when' is a column of dates, but 1 of 24 non-empty cells are not "
             "dates", r"'tomorrow'")),
    UseCase("predict-without-the-date-column", "predict",
            csv_of(lambda: new_rows().drop(columns=["when"])),
            (r"lacks feature column\(s\) the model was trained on: when",)),
    UseCase("predict-categorical-as-lists", "predict",
            lambda p: new_rows(colour=lambda f: [["red"]] * len(f)).to_parquet(p),
            (r"feature column 'colour' holds lists, not categories",), data="new.parquet"),
    UseCase("evaluate-unseen-class", "evaluate",
            csv_of(lambda: new_rows(kind=lambda f: np.where(f.index < 7, "d", f["kind"]))),
            (r"task 'kind': 7 of 24 rows have labels that are classes the run was not trained on "
             r"\(trained: a, b, c\)", r"Received: 'd'")),
    UseCase("evaluate-binary-label-outside-the-two", "evaluate",
            csv_of(lambda: new_rows(flag=lambda f: np.where(f.index % 3 == 0, 2, f["flag"]))),
            (r"task 'flag': 8 of 24 rows have labels that are neither of the two trained values "
             r"\(0, 1\)", r"Received: '2'")),
    UseCase("evaluate-regression-label-words", "evaluate",
            csv_of(lambda: new_rows(target=strays("target", [0, 5], "heavy"))),
            (r"task 'target': 2 of 24 rows have labels that are not numbers", "'heavy'")),
    UseCase("evaluate-numeric-feature-as-text", "evaluate",
            csv_of(lambda: new_rows(x2="high")),
            (r"feature column 'x2' was numeric in training, but 24 of 24",)),
]


def run_use(case: UseCase, trained, tmp_path) -> tuple[int, str, Path]:
    folder, run, lenient = trained
    target = lenient if case.lenient else run
    case.write(tmp_path / case.data)
    args = [case.command, str(target), "--data", str(tmp_path / case.data),
            "--results", str(folder / "results")]
    args += ["-o", str(tmp_path / "out.csv")] if case.command == "predict" else ["--name", "probe"]
    outcome = CliRunner().invoke(cli, args)
    output = outcome.output
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(outcome.exception))
    return outcome.exit_code, output, target


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in USE_CASES])
def test_predict_and_evaluate_refuse_data_of_another_kind(case: UseCase, trained, tmp_path):
    folder, run, _ = trained
    earlier = run / "evaluations" / "probe.csv"
    if case.command == "evaluate" and not earlier.exists():  # an evaluation that must survive
        new_rows().to_csv(tmp_path / "good.csv", index=False)
        done = CliRunner().invoke(cli, ["evaluate", str(run), "--data", str(tmp_path / "good.csv"),
                                        "--name", "probe", "--results", str(folder / "results")])
        assert done.exit_code == 0, done.output
    before = (earlier.read_bytes() if earlier.exists() else None, (run / "run.json").read_bytes())
    code, output, _ = run_use(case, trained, tmp_path)
    assert "Traceback" not in output, output
    assert code == case.code, f"exit code {code}, expected {case.code}:\n{output}"
    assert [line for line in output.splitlines() if line.startswith("Error: ")], output
    for pattern in case.expect:
        assert __import__("re").search(pattern, output), f"{pattern!r} not in:\n{output}"
    assert not (tmp_path / "out.csv").exists()  # nothing half-written
    after = (earlier.read_bytes() if earlier.exists() else None, (run / "run.json").read_bytes())
    assert after == before  # the earlier evaluation and the run's record are untouched
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_predict_reads_stray_cells_as_missing_when_the_recipe_says_so(trained, tmp_path):
    case = UseCase("lenient", "predict", csv_of(lambda: new_rows(x2=strays("x2", [1, 2]))), (),
                   code=0, lenient=True)
    code, output, _ = run_use(case, trained, tmp_path)
    assert code == 0, output
    assert "Warning:" in output and "'x2': 2 of 23 cells are not numbers ('n/a?'); read as " \
        "missing" in output
    predictions = pd.read_csv(tmp_path / "out.csv")
    assert len(predictions) == 24 and predictions["target"].notna().all()


def test_evaluate_counts_rows_left_out_and_shows_n_per_task(trained, tmp_path):
    folder, run, lenient = trained
    frame = new_rows(kind=lambda f: np.where(f.index < 7, "d", f["kind"])).drop(columns=["target"])
    case = UseCase("lenient", "evaluate", csv_of(frame), (), code=0, lenient=True)
    code, output, target = run_use(case, trained, tmp_path)
    assert code == 0, output
    assert "task 'kind': 7 of 24 rows left out: labels classes the run was not trained on" in output
    assert "Not scored: target (no label column target in the data)" in output
    saved = pd.read_csv(target / "evaluations" / "probe.csv")
    assert set(saved.loc[saved.task == "kind", "n"]) == {17}
    assert set(saved.loc[saved.task == "flag", "n"]) == {23}  # row 5 has no flag label
    assert any(line.split()[:2] == ["kind", "accuracy"] and line.split()[-1] == "17"
               for line in output.splitlines()), output  # the printed table carries n


def test_predict_with_unseen_categories_warns_with_a_count(trained, tmp_path):
    case = UseCase("unseen", "predict", csv_of(lambda: new_rows(
        colour=lambda f: np.where(f.index < 4, "purple", f["colour"]))), (), code=0)
    code, output, _ = run_use(case, trained, tmp_path)
    assert code == 0, output
    assert "'colour': 4 of 24 rows hold categories not seen in training ('purple')" in output


def test_predict_keeps_a_date_column_as_written(trained, tmp_path):
    folder, run, _ = trained
    frame = new_rows()
    frame.to_csv(tmp_path / "new.csv", index=False)
    outcome = CliRunner().invoke(cli, ["predict", str(run), "--data", str(tmp_path / "new.csv"),
                                       "--keep", "when", "--results", str(folder / "results"),
                                       "-o", str(tmp_path / "out.csv")])
    assert outcome.exit_code == 0, outcome.output
    assert pd.read_csv(tmp_path / "out.csv")["when"].tolist() == frame["when"].tolist()


def test_the_python_api_refuses_unconverted_words_too(trained):
    from mtl_runner.errors import UsageError
    from mtl_runner.inference import load_trained

    folder, run, _ = trained
    with pytest.raises(UsageError, match="'x1' was numeric in training, but 24 of 24"):
        load_trained(str(run), folder / "results").predict(new_rows(x1="12cm"))
