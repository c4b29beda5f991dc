"""The store of answered predictions and the outcomes of feedback, without a server."""

from __future__ import annotations

import gc
import re

import numpy as np
import orjson
import pytest

from coalmine_serving import feedback
from coalmine_serving.feedback import (
    DUPLICATE,
    FORWARDED,
    LATE,
    MATCHED,
    UNKNOWN,
    Counts,
    Ids,
    Invalid,
    Ledger,
    Store,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ledger(*, classifier: bool = True, max_rows: int = 100, max_age: float = 60.0) -> Ledger:
    store = Store(max_rows, max_age, clock=Clock())
    return Ledger(store, Ids(4242, nonce="abcd"), classifier)


def body(*items: tuple[str, object]) -> bytes:
    return orjson.dumps({"feedback": [{"id": i, "truth": t} for i, t in items]})


def send(book: Ledger, raw: bytes, local: str | None = "10.1.2.3") -> tuple[Counts, feedback.Plan]:
    """Parse, plan and apply a body as the endpoint does; return the counts and the plan."""
    plan = book.plan(feedback.parse(raw, book.stats.classifier), local)
    counts = Counts()
    book.apply(plan.local, counts)
    return counts, plan


def test_ids_name_the_process_and_its_seq() -> None:
    ids = Ids(8123, nonce="f00d")
    first, second = ids.name(1, "10.0.0.7"), ids.name(0x1F, "fd00::7")
    assert first == "f00d-1@10.0.0.7:8123"
    assert second == "f00d-1f@[fd00::7]:8123"
    assert ids.owns(first)
    assert not Ids(8123).owns(first)  # another process (or a restart) has another nonce
    assert (ids.seq(first), ids.seq(second)) == (1, 0x1F)
    not_ours = (
        "beef-1@10.0.0.7:8123",
        "f00d-1@10.0.0.7:8124",
        "f00d-01@10.0.0.7:8123",
        "f00d-0@10.0.0.7:8123",
        "f00d-1F@10.0.0.7:8123",
        "f00d-1",
        "f00d-x@h:8123",
    )
    for id in not_ours:
        assert ids.seq(id) is None, id
    assert feedback.target(second) == ("fd00::7", 8123)
    for not_routable in ("client-7", "x@host:80", "x@10.0.0.1:0", "x@10.0.0.1:99999", "x@10.0.0.1"):
        assert feedback.target(not_routable) is None


def test_forwarding_stays_in_the_pod_network_or_on_loopback() -> None:
    assert feedback.near("10.1.200.9", "10.1.2.3")
    assert not feedback.near("10.2.0.1", "10.1.2.3")
    assert not feedback.near("169.254.169.254", "10.1.2.3")
    assert feedback.near("127.0.0.1", "127.0.0.1")
    assert not feedback.near("127.0.0.1", "10.1.2.3")
    assert not feedback.near("10.1.2.3", "127.0.0.1")
    assert not feedback.near("fd00::1", "10.1.2.3")


def test_the_rows_bound_evicts_the_oldest_and_their_feedback_is_late() -> None:
    book = ledger(max_rows=10)
    for i in range(6):
        book.store.put(f"p{i}", np.zeros(3, dtype=np.int64))  # 18 rows asked, 10 allowed
    assert (len(book.store), book.store.rows) == (3, 9)
    counts, _ = send(book, body(("p0", [0, 0, 0]), ("p5", [0, 0, 0]), ("never", 1)))
    assert (counts.matched, counts.late, counts.unknown) == (1, 1, 1)
    assert counts.unknown_ids == ["p0", "never"]
    assert counts.status == 404


def test_predictions_older_than_the_age_are_late() -> None:
    book = ledger(max_age=60)
    clock = book.store._clock
    assert isinstance(clock, Clock)
    book.store.put("old", np.array([1]))
    clock.now += 30
    book.store.put("young", np.array([1]))
    clock.now += 31  # "old" is 61 s old, "young" 31 s
    counts, _ = send(book, body(("old", 1), ("young", 1)))
    assert (counts.matched, counts.late) == (1, 1)
    assert len(book.store) == 0


def test_evicted_ids_are_remembered_only_as_long_as_the_store_could_hold_them() -> None:
    book = ledger(max_rows=2)
    for i in range(5):
        book.store.put(f"p{i}", np.array([0]))
    assert book.store.find("p2") == LATE
    assert book.store.find("p0") == UNKNOWN  # beyond the memory of 2 ids


def answered(book: Ledger, *rows: int) -> list[str]:
    """Generated ids of requests answered with these numbers of rows (all predicting 0)."""
    return [book.answer(np.zeros(n, dtype=np.int64), "10.1.2.3") for n in rows]


def outcomes(book: Ledger, *ids: str) -> list[str]:
    found = [book.store.find(book._key(i)) for i in ids]
    return [f if isinstance(f, str) else MATCHED for f in found]


def test_generated_ids_wrap_around_the_ring() -> None:
    book = ledger(max_rows=3)
    ids = answered(book, *[1] * 10)  # 10 requests through 3 slots
    assert (len(book.store), book.store.rows, book.store.first, book.store.last) == (3, 3, 8, 10)
    assert outcomes(book, *ids) == [LATE] * 7 + [MATCHED] * 3
    counts, _ = send(book, body(*((i, 0) for i in ids[7:])))
    assert (counts.matched, book.stats.rows, len(book.store), book.store.rows) == (3, 3, 0, 0)


def test_the_rows_bound_holds_with_requests_of_many_rows() -> None:
    book = ledger(max_rows=10)
    a, b, c = answered(book, 4, 4, 4)  # 12 rows: a goes
    assert (len(book.store), book.store.rows) == (2, 8)
    (d,) = answered(book, 10)  # b and c go
    assert (len(book.store), book.store.rows) == (1, 10)
    (e,) = answered(book, 11)  # more than the bound: kept by nobody, d goes too
    assert (len(book.store), book.store.rows) == (0, 0)
    assert outcomes(book, a, b, c, d, e) == [LATE] * 5
    (f,) = answered(book, 2)
    assert outcomes(book, f) == [MATCHED]


def test_late_unknown_and_duplicate_after_the_ring_wraps() -> None:
    book = ledger(max_rows=4)
    ids = answered(book, 1, 1, 1, 1)
    send(book, body((ids[1], 0)))  # seq 2 labelled: its slot says so
    ids += answered(book, 4)  # seq 5 takes the slot of 1, its rows push 2-4 out
    assert outcomes(book, *ids) == [LATE, DUPLICATE, LATE, LATE, MATCHED]
    ids += answered(book, 1)  # seq 6 takes the slot of 2, and pushes 5 out
    assert outcomes(book, *ids) == [LATE] * 5 + [MATCHED]
    issued_next = book.ids.name(book.store.last + 1, "10.1.2.3")
    counts, _ = send(book, body((ids[0], 0), (ids[5], 0), (ids[5], 0), (issued_next, 0)))
    assert (counts.matched, counts.duplicate, counts.late, counts.unknown) == (1, 1, 1, 1)
    assert counts.unknown_ids == [ids[0], issued_next]
    assert book.stats.outcomes[MATCHED] == 2


def test_generated_predictions_older_than_the_age_are_late() -> None:
    book = ledger(max_age=60)
    clock = book.store._clock
    assert isinstance(clock, Clock)
    old, labelled = answered(book, 1, 1)
    send(book, body((labelled, 0)))
    clock.now += 30
    (young,) = answered(book, 2)
    clock.now += 31  # old and labelled are 61 s old, young 31 s
    book.store.expire()
    assert (len(book.store), book.store.rows, book.store.first) == (1, 2, 3)
    assert outcomes(book, old, labelled, young) == [LATE, DUPLICATE, MATCHED]
    clock.now += 30
    book.store.expire()
    assert (len(book.store), book.store.rows) == (0, 0)
    assert outcomes(book, young) == [LATE]


def test_an_id_of_another_nonce_or_port_is_unknown_even_with_a_kept_seq() -> None:
    book = ledger()
    (mine,) = answered(book, 1)
    others = ["beef-1@10.1.2.3:4242", "abcd-1@10.1.2.3:4243"]
    counts, plan = send(book, body(*((o, 0) for o in others)), local=None)
    assert [i.id for i in plan.local] == others
    assert (counts.unknown, counts.unknown_ids) == (2, others)
    assert outcomes(book, mine, "abcd-1@127.0.0.1:4242") == [MATCHED, MATCHED]  # any address


def test_client_and_generated_ids_share_the_rows_bound_oldest_first() -> None:
    book = ledger(max_rows=4)
    clock = book.store._clock
    assert isinstance(clock, Clock)
    (first,) = answered(book, 2)
    clock.now += 1
    book.store.put("client", np.zeros(2, dtype=np.int64))
    clock.now += 1
    (third,) = answered(book, 1)  # 5 rows: first goes
    assert outcomes(book, first, "client", third) == [LATE, MATCHED, MATCHED]
    answered(book, 2)  # 5 rows again: the client's goes
    assert outcomes(book, "client", third) == [LATE, MATCHED]
    assert (len(book.store), book.store.rows) == (2, 3)


def test_a_client_id_that_looks_generated_is_kept_under_the_id() -> None:
    book = ledger()
    (mine,) = answered(book, 1)
    book.store.put(mine, np.zeros(2, dtype=np.int64))  # a client sent our id as its own
    counts, _ = send(book, body((mine, [0, 0])))
    assert (counts.matched, book.stats.rows) == (1, 2)


def test_keeping_generated_predictions_creates_no_object_the_gc_tracks() -> None:
    book = ledger(max_rows=1000)
    predictions = np.zeros(1, dtype=np.int64)
    for _ in range(2000):  # fill the ring and wrap it once
        book.store.add(predictions)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(5000):
        book.store.add(predictions)
    assert len(gc.get_objects()) - before < 10


def test_a_second_truth_for_an_id_is_a_duplicate_and_counted_once() -> None:
    book = ledger()
    book.store.put("a", np.array([1, 0]))
    first, _ = send(book, body(("a", [1, 1])))
    again, _ = send(book, body(("a", [1, 1])))
    assert (first.matched, first.status) == (1, 200)
    assert (again.matched, again.duplicate, again.status) == (0, 1, 200)
    assert (book.stats.rows, book.stats.correct) == (2, 1)
    assert book.stats.outcomes[MATCHED] == 1
    assert book.stats.outcomes[DUPLICATE] == 1


def test_a_reused_id_replaces_the_older_prediction_and_can_be_labelled_again() -> None:
    book = ledger()
    book.store.put("same", np.array([0, 0, 0]))
    book.store.put("same", np.array([1]))
    assert (len(book.store), book.store.rows) == (1, 1)
    send(book, body(("same", 1)))
    book.store.put("same", np.array([0]))  # the client sent the id again after labelling
    counts, _ = send(book, body(("same", 1)))
    assert counts.matched == 1
    assert (book.stats.rows, book.stats.correct) == (2, 1)


def test_classes_compare_as_agreement_does() -> None:
    book = ledger()
    book.store.put("ints", np.array([0, 1, 2]))
    book.store.put("text", np.array(["ant", "bee"]))
    send(book, body(("ints", [0, "1", 1]), ("text", ["ant", "wasp"])))
    assert (book.stats.rows, book.stats.correct) == (5, 3)


def test_a_regressors_abs_error_lands_in_its_buckets() -> None:
    book = ledger(classifier=False)
    book.store.put("r", np.array([1.0, 2.0, 3.0]))
    send(book, body(("r", [1.25, 1.75, 3])))
    stats = book.stats
    assert stats.rows == 3
    assert stats.abs_error_sum == pytest.approx(0.5)
    index = feedback.ABS_ERROR_BUCKETS.index(0.5)
    assert stats.abs_error[: index + 1].sum() == 3  # 0.25, 0.25 and 0 are all <= 0.5
    assert stats.abs_error[: feedback.ABS_ERROR_BUCKETS.index(0.2) + 1].sum() == 1  # the 0


@pytest.mark.parametrize(
    ("raw", "classifier", "message"),
    [
        (b"not json", True, "malformed JSON"),
        (b'{"items": []}', True, '{"feedback"'),
        (b'{"feedback": [{"id": "a", "truth": 1}, 7]}', True, "feedback[1] must be an object"),
        (b'{"feedback": [{"id": 3, "truth": 1}]}', True, "feedback[0].id"),
        (b'{"feedback": [{"id": "a", "truth": null}]}', True, "feedback[0].truth"),
        (b'{"feedback": [{"id": "a", "truth": [[1]]}]}', True, "feedback[0].truth"),
        (b'{"feedback": [{"id": "a", "truth": "cat"}]}', False, "numbers"),
        (b'{"feedback": [{"id": "a", "truth": true}]}', False, "numbers"),
    ],
)
def test_bad_bodies_are_refused_whole_naming_the_item(
    raw: bytes, classifier: bool, message: str
) -> None:
    with pytest.raises(Invalid, match=re.escape(message)) as caught:
        feedback.parse(raw, classifier)
    assert caught.value.items >= 1


def test_a_truth_of_the_wrong_length_refuses_the_body_and_applies_nothing() -> None:
    book = ledger()
    book.store.put("one", np.array([1]))
    book.store.put("two", np.array([1, 0]))
    with pytest.raises(Invalid, match=r"feedback\[1\]\.truth has 1 values for a prediction of 2"):
        send(book, body(("one", 1), ("two", 1)))
    assert not isinstance(book.store.find("one"), str)  # still waiting for its truth
    assert book.stats.rows == 0


def test_too_many_items_are_refused() -> None:
    raw = body(*((f"i{n}", 1) for n in range(feedback.MAX_ITEMS + 1)))
    with pytest.raises(Invalid, match="too many items") as caught:
        feedback.parse(raw, True)
    assert caught.value.items == feedback.MAX_ITEMS + 1


def test_ids_of_other_processes_are_planned_per_target_and_never_when_forwarded() -> None:
    book = ledger()
    mine = book.answer(np.array([1]), "10.1.2.3")
    raw = body((mine, 1), ("beef-1@10.1.9.9:5000", 1), ("beef-2@10.1.9.9:5000", 0),
               ("cafe-1@10.1.9.8:5000", 1), ("far-1@192.168.0.1:5000", 1))  # fmt: skip
    counts, plan = send(book, raw)
    assert {k: [i.id for i in v] for k, v in plan.remote.items()} == {
        ("10.1.9.9", 5000): ["beef-1@10.1.9.9:5000", "beef-2@10.1.9.9:5000"],
        ("10.1.9.8", 5000): ["cafe-1@10.1.9.8:5000"],
    }
    assert (counts.matched, counts.unknown, counts.unknown_ids) == (
        1,
        1,
        ["far-1@192.168.0.1:5000"],
    )
    _, forwarded = send(book, raw, local=None)  # a forwarded body is looked up here only
    assert forwarded.remote == {}
    assert book.stats.outcomes[FORWARDED] == 0  # counted by the endpoint once sent


def test_another_process_answer_merges_and_a_malformed_one_is_refused() -> None:
    counts = Counts(matched=1, unknown_ids=[])
    counts.merge(Counts.of({"matched": 2, "duplicate": 1, "late": 0, "unknown": 1,
                            "unknownIds": ["x"]}))  # fmt: skip
    assert (counts.matched, counts.duplicate, counts.unknown, counts.unknown_ids) == (
        3,
        1,
        1,
        ["x"],
    )
    for bad in ([], {"matched": "2"}, {"matched": 1, "duplicate": 0, "late": 0, "unknown": 0}):
        with pytest.raises(ValueError, match="not a feedback answer"):
            Counts.of(bad)
