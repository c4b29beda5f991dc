"""The row-by-row comparison of shadow steps, and the mirror file's parsing."""

from __future__ import annotations

import numpy as np
import pytest

from coalmine_serving import agreement, mirror


def test_classifier_rows_agree_by_class_whatever_json_made_of_the_label() -> None:
    result = agreement.compare(np.array([0, 1, 1, 2]), [0, "1", 2, 2], classifier=True)
    assert (result.rows, result.agreeing, result.mismatched) == (4, 3, False)
    assert result.pairs == {("0", "0"): 1, ("1", "1"): 1, ("1", "2"): 1, ("2", "2"): 1}
    assert result.disagreeing == (2,)


def test_string_classes_compare_exactly() -> None:
    result = agreement.compare(np.array(["ant", "bee"]), ["ant", "hornet"], classifier=True)
    assert (result.rows, result.agreeing) == (2, 1)
    assert result.pairs[("bee", "hornet")] == 1


def test_a_permuted_classifier_agrees_on_nothing() -> None:
    stable = np.array([0, 1] * 50)
    result = agreement.compare(stable, (1 - stable).tolist(), classifier=True)
    assert (result.rows, result.agreeing) == (100, 0)
    assert result.pairs == {("0", "1"): 50, ("1", "0"): 50}
    assert result.disagreeing == (0, 1, 2)


def test_regression_rows_agree_within_the_tolerance_and_report_each_delta() -> None:
    stable = np.array([1.0, 1000.0, 0.0, 5.0])
    canary = [1.0 + 1e-12, 1000.0 * (1 + 1e-7), 1e-10, 5.5]
    result = agreement.compare(stable, canary, classifier=False)
    assert (result.rows, result.agreeing) == (4, 3)
    assert result.deltas[3] == pytest.approx(0.5)
    assert result.disagreeing == (3,)


def test_a_constant_offset_fails_every_regression_row() -> None:
    stable = np.linspace(-10, 10, 64)
    result = agreement.compare(stable, (stable + 0.25).tolist(), classifier=False)
    assert (result.rows, result.agreeing) == (64, 0)
    assert np.allclose(result.deltas, 0.25)


@pytest.mark.parametrize(
    "canary",
    [[0, 1], [[0], [1], [1]], [0, [1, 2], 1], "text", None, {"a": 1}],
    ids=["short", "2-d", "ragged", "scalar", "null", "object"],
)
def test_answers_of_another_shape_are_mismatched_not_a_crash(canary: object) -> None:
    result = agreement.compare(np.array([0, 1, 1]), canary, classifier=True)
    assert result.mismatched
    assert result.rows == 0
    assert result.agreeing == 0


def test_a_regressor_answering_text_is_mismatched() -> None:
    assert agreement.compare(np.array([1.0]), ["one"], classifier=False).mismatched


def test_the_confusion_table_is_bounded_in_classes() -> None:
    table = agreement.Confusion(max_classes=2)
    table.add({("a", "a"): 1, ("b", "x"): 2})
    table.add({("c", "y"): 3, ("a", "z"): 4})
    assert table.cells == {
        ("a", "a"): 1,
        ("b", "x"): 2,
        (agreement.OTHER, agreement.OTHER): 3,
        ("a", agreement.OTHER): 4,
    }


def test_the_mirror_file_names_a_target_or_nothing() -> None:
    target = mirror.parse_target(
        '{"url": "http://m-canary.ns.svc:8080", "percent": 25, "canary": "v2"}'
    )
    assert target == mirror.Target("m-canary.ns.svc", 8080, 25.0, "v2")
    assert mirror.parse_target("") is None
    assert mirror.parse_target('{"url": "http://x", "percent": 0}') is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"url": "http://x", "percent": 101}', "'percent'"),
        ('{"url": "http://x", "percent": true}', "'percent'"),
        ('{"url": "https://x", "percent": 5}', "'url'"),
        ('{"url": "x:80", "percent": 5}', "'url'"),
        ('{"url": "http://x", "percent": 5, "examples": "no"}', "'examples'"),
        ("[1]", "JSON object"),
    ],
)
def test_a_bad_mirror_file_is_refused_with_the_field(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        mirror.parse_target(text)


def test_a_batch_of_matrices_and_records_encodes_every_row() -> None:
    path, body, header = mirror.encode("m", [np.ones((2, 3)), np.zeros((1, 3))])
    assert path == b"/v2/models/m/infer"
    assert body[:header].startswith(b'{"inputs":[{"name":"input-0","datatype":"FP64","shape":[3,3]')
    assert len(body) - header == 9 * 8
    records = np.array([(1.0, "a")], dtype=[("x", "f8"), ("c", "U1")])
    longer = np.array([(2.0, "bee")], dtype=[("x", "f8"), ("c", "U3")])
    _, body, header = mirror.encode("m", [records, longer])
    assert header == 0
    assert b'"data":["a","bee"]' in body
    assert b'"data":[1.0,2.0]' in body


def test_a_batch_that_agrees_counts_the_diagonal_with_the_same_keys_as_one_that_does_not() -> None:
    agreeing = agreement.compare(np.array([0, 1, 1]), [0, 1, 1], classifier=True)
    assert agreeing.pairs == {("0", "0"): 1, ("1", "1"): 2}
    mixed = agreement.compare(np.array([0, 1, 1]), [0, 1, 0], classifier=True)
    assert mixed.pairs == {("0", "0"): 1, ("1", "1"): 1, ("1", "0"): 1}
    text = agreement.compare(np.array(["a", "b"]), ["a", "b"], classifier=True)
    assert text.pairs == {("a", "a"): 1, ("b", "b"): 1}
