"""The meetings service on fakes: compose-link, PUT/DELETE of an event's meeting, the link claim."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.meetings import ComposeLinkRequest, MeetingLink, NotConnected
from link_zoom.domain.schedule import Schedule, parse_instant
from link_zoom.errors import FeatureDisabled, ZoomMeetingNotFound, ZoomOutcomeUnknown, ZoomUnavailable
from tests.unit.meetings.fakes import OTHER_USER, USER, World, build_world


def at(start: str, end: str, topic: str = "Review", zone: str = "UTC") -> Schedule:
    begin, finish = parse_instant(start), parse_instant(end)
    assert begin and finish
    return Schedule(topic, begin, finish, zone)


TEN = at("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")
ELEVEN = at("2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z")


@pytest.fixture
def world() -> World:
    return build_world()


def test_compose_link_makes_one_meeting_starting_this_minute(world: World) -> None:
    answer = world.meetings.compose_link(USER, ComposeLinkRequest("Quick call", 45), Deadline(10))
    assert len(world.zoom) == 1 and answer["meeting_id"] in world.zoom
    assert answer["duration_minutes"] == 45 and answer["start_time"].endswith(":00Z")
    assert set(answer) == {"meeting_id", "join_url", "password", "start_time", "duration_minutes"}


def test_compose_link_with_the_switch_off_is_feature_disabled_and_touches_nothing(world: World) -> None:
    world.switch.on = False
    with pytest.raises(FeatureDisabled):
        world.meetings.compose_link(USER, ComposeLinkRequest(), Deadline(10))
    assert world.connection.uses == 0 and not world.zoom.calls


def test_compose_link_for_an_unconnected_user_is_not_connected(world: World) -> None:
    with pytest.raises(NotConnected):
        world.meetings.compose_link(OTHER_USER, ComposeLinkRequest(), Deadline(10))
    assert len(world.zoom) == 0


def test_put_creates_once_then_answers_the_same_meeting_without_calling_zoom(world: World) -> None:
    first = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    again = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert first == again
    assert world.zoom.calls == [("create", "")]
    assert first["start_time"] == "2026-03-01T10:00:00Z" and first["duration_minutes"] == 60


def test_put_with_a_changed_time_moves_the_meeting_with_one_patch(world: World) -> None:
    first = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    moved = world.meetings.put_event_meeting(USER, "evt", ELEVEN, Deadline(10))
    assert moved["meeting_id"] == first["meeting_id"] and moved["start_time"] == "2026-03-01T11:00:00Z"
    assert world.zoom.calls == [("create", ""), ("update", first["meeting_id"])]
    assert world.zoom.meetings[first["meeting_id"]] == ELEVEN


@pytest.mark.parametrize(
    "change",
    [
        at("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", topic="Renamed"),
        at("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", zone="Europe/Berlin"),
        at("2026-03-01T10:00:00Z", "2026-03-01T11:30:00Z"),
    ],
)
def test_topic_zone_and_end_changes_each_move_once(world: World, change: Schedule) -> None:
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.meetings.put_event_meeting(USER, "evt", change, Deadline(10))
    world.meetings.put_event_meeting(USER, "evt", change, Deadline(10))
    assert world.zoom.count("update") == 1


def test_the_same_instant_with_another_offset_is_no_change(world: World) -> None:
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    same = at("2026-03-01T11:00:00+01:00", "2026-03-01T12:00:00+01:00")
    world.meetings.put_event_meeting(USER, "evt", same, Deadline(10))
    assert world.zoom.calls == [("create", "")]


def test_a_meeting_deleted_at_zoom_is_replaced_when_the_event_moves(world: World) -> None:
    first = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    del world.zoom.meetings[first["meeting_id"]]
    moved = world.meetings.put_event_meeting(USER, "evt", ELEVEN, Deadline(10))
    assert moved["meeting_id"] != first["meeting_id"] and len(world.zoom) == 1


def test_put_with_the_switch_off_is_feature_disabled(world: World) -> None:
    world.switch.on = False
    with pytest.raises(FeatureDisabled):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))


def test_put_for_an_unconnected_user_leaves_no_claim_behind(world: World) -> None:
    with pytest.raises(NotConnected):
        world.meetings.put_event_meeting(OTHER_USER, "evt", TEN, Deadline(10))
    assert len(world.links) == 0


def test_a_zoom_failure_releases_the_claim_so_a_retry_can_create(world: World) -> None:
    world.zoom.fail_next("create", ZoomUnavailable())
    with pytest.raises(ZoomUnavailable):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert len(world.links) == 0
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert len(world.zoom) == 1


def test_racing_creators_make_one_meeting(world: World) -> None:
    world.zoom.latency_s = 0.05
    answers: list[dict[str, object]] = []
    barrier = threading.Barrier(6)

    def put() -> None:
        barrier.wait()
        answers.append(world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10)))

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.zoom) == 1 and world.zoom.count("create") == 1
    assert len({answer["meeting_id"] for answer in answers}) == 1 and len(answers) == 6


def test_an_expired_claim_of_a_crashed_creator_is_taken_over(world: World) -> None:
    world.links.rows[(USER, "evt")] = MeetingLink(USER, "evt", claim_id="dead", claim_expires_at=time.time() - 1)
    answer = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert answer["meeting_id"] in world.zoom


def test_a_live_claim_is_waited_for_until_the_deadline(world: World) -> None:
    world.links.rows[(USER, "evt")] = MeetingLink(USER, "evt", claim_id="busy", claim_expires_at=time.time() + 60)
    with pytest.raises(ZoomUnavailable):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(0.5))
    assert not world.zoom.calls


def test_delete_removes_the_meeting_and_the_link(world: World) -> None:
    first = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(10)) is True
    assert first["meeting_id"] not in world.zoom and len(world.links) == 0


def test_delete_without_a_meeting_and_with_the_switch_off_just_works(world: World) -> None:
    world.switch.on = False
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(10)) is False
    assert not world.zoom.calls and world.switch.reads == 0


def test_delete_of_a_meeting_zoom_no_longer_has_counts_as_done(world: World) -> None:
    first = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.zoom.meetings.clear()
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(10)) is True
    assert world.zoom.calls[-1] == ("delete", first["meeting_id"]) and len(world.links) == 0


def test_delete_for_a_user_who_disconnected_forgets_the_link(world: World) -> None:
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.connection.connected.clear()
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(10)) is True
    assert len(world.links) == 0


def test_a_failed_delete_keeps_the_link_for_a_retry(world: World) -> None:
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.zoom.fail_next("delete", ZoomUnavailable())
    with pytest.raises(ZoomUnavailable):
        world.meetings.delete_event_meeting(USER, "evt", Deadline(10))
    assert len(world.links) == 1


def test_a_lost_claim_deletes_the_surplus_meeting(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A creator whose claim was taken over (it outlived its lease) must not leave a second meeting."""
    original_complete = world.links.complete

    def steal_then_complete(*args: Any, **kwargs: Any) -> Any:
        world.links.rows[(USER, "evt")] = MeetingLink(USER, "evt", claim_id="thief", claim_expires_at=time.time() + 60)
        return original_complete(*args, **kwargs)

    monkeypatch.setattr(world.links, "complete", steal_then_complete)
    with pytest.raises(ZoomUnavailable):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(1))
    assert len(world.zoom) == 0 and world.zoom.count("delete") == 1


def test_meeting_not_found_is_what_update_raises_for_a_missing_meeting(world: World) -> None:
    with pytest.raises(ZoomMeetingNotFound):
        world.zoom.update("token-x", "404", TEN, Deadline(1))


def test_a_stale_claim_of_a_dead_creator_does_not_block_a_delete(world: World) -> None:
    world.links.rows[(USER, "evt")] = MeetingLink(USER, "evt", claim_id="dead", claim_expires_at=time.time() - 1)
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(5)) is False
    assert len(world.links) == 0


def test_a_row_that_is_neither_claim_nor_link_ends_at_the_deadline(world: World) -> None:
    world.links.rows[(USER, "evt")] = MeetingLink(USER, "evt")
    with pytest.raises(ZoomUnavailable):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(0.6))
    with pytest.raises(ZoomUnavailable):
        world.meetings.delete_event_meeting(USER, "evt", Deadline(0.6))


# ---------------------------------------------------------------- creates whose answer was lost


def test_a_create_that_lost_its_answer_keeps_its_claim_and_the_retry_adopts_the_meeting(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    (made,) = world.zoom.meetings
    left = world.links.get(USER, "evt")
    assert left is not None and left.meeting_id is None and left.outcome_unknown and left.claim_ref
    assert world.zoom.references[made] == left.claim_ref
    answer = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert answer["meeting_id"] == made and len(world.zoom) == 1
    assert [op for op, _ in world.zoom.calls] == ["create", "find_created"]
    link = world.links.get(USER, "evt")
    assert link is not None and link.claim_ref is None and not link.outcome_unknown


def test_the_adopted_meeting_is_moved_when_the_event_changed_meanwhile(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    answer = world.meetings.put_event_meeting(USER, "evt", ELEVEN, Deadline(10))
    assert list(world.zoom.meetings.values()) == [ELEVEN] and answer["start_time"] == "2026-03-01T11:00:00Z"
    assert [op for op, _ in world.zoom.calls] == ["create", "find_created", "update"]


def test_when_the_lost_create_made_nothing_the_retry_creates_with_the_same_reference(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    left = world.links.get(USER, "evt")
    assert left is not None
    world.zoom.meetings.clear()  # Zoom never made it after all
    answer = world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert list(world.zoom.meetings) == [answer["meeting_id"]]
    assert world.zoom.references[answer["meeting_id"]] == left.claim_ref


def test_a_failure_after_a_lost_create_keeps_the_claim_for_the_next_retry(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.zoom.fail_next("find_created", ZoomUnavailable())
    with pytest.raises(ZoomUnavailable):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    left = world.links.get(USER, "evt")
    assert left is not None and left.outcome_unknown and left.meeting_id is None
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert len(world.zoom) == 1 and world.zoom.count("create") == 1


def test_surplus_meetings_of_the_same_claim_are_deleted(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    world.zoom.meetings["99"] = ELEVEN  # a slow create of the same claim that landed late
    world.zoom.references["99"] = next(iter(world.zoom.references.values()))
    answer = world.meetings.put_event_meeting(USER, "evt", ELEVEN, Deadline(10))
    assert list(world.zoom.meetings) == ["99"] == [answer["meeting_id"]], "the one already right is kept"
    assert world.zoom.count("update") == 0 and world.zoom.count("delete") == 1


def test_a_delete_finds_and_deletes_the_meeting_a_lost_create_made(world: World) -> None:
    world.zoom.fail_next("create", ZoomOutcomeUnknown())
    with pytest.raises(ZoomOutcomeUnknown):
        world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert world.meetings.delete_event_meeting(USER, "evt", Deadline(5)) is False
    assert len(world.zoom) == 0 and len(world.links) == 0


def test_the_normal_path_makes_exactly_one_zoom_call_and_no_lookup(world: World) -> None:
    world.meetings.put_event_meeting(USER, "evt", TEN, Deadline(10))
    assert world.zoom.calls == [("create", "")] and world.links.get(USER, "evt") is not None
