"""The memory browser's grid: what a person changed in it becomes one edit per changed memory with only the changed
fields, bound to the version they saw; ticked rows become ids; the key changes with the rows it shows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from dashboard import edits
from timemory import Memory, MemoryEdit

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def memory(id_: str, content: str, *, type_: str = "personal", status: str = "active", minute: int = 0,
           superseded_by: str | None = None) -> Memory:
    at = T0.replace(minute=minute)
    return Memory.model_validate({"id": id_, "user_id": "ana", "content": content, "type": type_, "status": status,
                                  "created_at": T0, "updated_at": at, "superseded_by": superseded_by})


LISBON = memory("m-lisbon", "The user lives in Lisbon.", minute=5)
AMSTERDAM = memory("m-amsterdam", "The user lives in Amsterdam.", status="outdated", superseded_by="m-lisbon")
VEGGIE = memory("m-veggie", "The user is vegetarian.", type_="preference", minute=7)
ROWS = [LISBON, AMSTERDAM, VEGGIE]
REPLACEMENTS = {"m-lisbon": LISBON}


def grid() -> pd.DataFrame:
    return edits.grid_frame(ROWS, REPLACEMENTS)


def test_the_grid_shows_each_memory_by_id_with_what_replaced_it() -> None:
    frame = grid()
    assert list(frame.columns) == edits.COLUMNS and list(frame.index) == ["m-lisbon", "m-amsterdam", "m-veggie"]
    assert list(frame["superseded by"]) == ["", "The user lives in Lisbon. (active)", ""]
    assert list(frame["updated"]) == ["2024-05-01 09:05", "2024-05-01 09:00", "2024-05-01 09:07"]
    assert not frame["select"].any()
    gone = memory("m-old", "The user lived in Oslo.", status="outdated", superseded_by="m-deleted")
    assert edits.replaced_by(gone, REPLACEMENTS) == "(deleted)"


def test_an_untouched_grid_makes_no_edit() -> None:
    assert edits.grid_edits(ROWS, grid()) == []


def test_one_changed_cell_is_one_edit_of_that_field_bound_to_the_version_seen() -> None:
    after = grid()
    after.loc["m-amsterdam", "content"] = "The user lived in Amsterdam until 2023."
    assert edits.grid_edits(ROWS, after) == [
        MemoryEdit(memory_id="m-amsterdam", content="The user lived in Amsterdam until 2023.", seen_updated_at=T0)]


def test_type_and_status_changed_on_one_row_and_content_on_another_are_two_edits_in_grid_order() -> None:
    after = grid()
    after.loc["m-veggie", ["type", "status"]] = ["health", "outdated"]
    after.loc["m-lisbon", "content"] = "The user lives in Porto."
    assert edits.grid_edits(ROWS, after) == [
        MemoryEdit(memory_id="m-lisbon", content="The user lives in Porto.", seen_updated_at=LISBON.updated_at),
        MemoryEdit(memory_id="m-veggie", type="health", status="outdated", seen_updated_at=VEGGIE.updated_at)]


def test_a_cleared_content_cell_is_an_edit_to_empty_text_for_the_core_to_refuse() -> None:
    after = grid()
    after["content"] = after["content"].astype(object)
    after.loc["m-lisbon", "content"] = None
    assert edits.grid_edits(ROWS, after) == [MemoryEdit(memory_id="m-lisbon", content="",
                                                        seen_updated_at=LISBON.updated_at)]


def test_rows_shown_in_another_order_are_matched_by_id_not_position() -> None:
    after = grid().loc[["m-veggie", "m-lisbon", "m-amsterdam"]].copy()
    after.loc["m-lisbon", "status"] = "outdated"
    assert edits.grid_edits(ROWS, after) == [MemoryEdit(memory_id="m-lisbon", status="outdated",
                                                        seen_updated_at=LISBON.updated_at)]


def test_ticking_rows_selects_them_and_edits_nothing() -> None:
    after = grid()
    after.loc[["m-veggie", "m-lisbon"], "select"] = True
    assert edits.ticked(after) == ["m-lisbon", "m-veggie"] and edits.grid_edits(ROWS, after) == []
    assert edits.ticked(grid()) == []


def test_the_key_changes_with_the_rows_their_order_and_their_versions() -> None:
    key = edits.grid_key(ROWS)
    assert key.startswith("editor-") and len(key) == len("editor-") + 16
    assert edits.grid_key(list(ROWS)) == key
    assert edits.grid_key([VEGGIE, LISBON, AMSTERDAM]) != key  # a save re-sorted them
    assert edits.grid_key([LISBON, AMSTERDAM]) != key  # a filter dropped one
    edited = LISBON.model_copy(update={"updated_at": T0.replace(minute=30)})
    assert edits.grid_key([edited, AMSTERDAM, VEGGIE]) != key  # another writer changed one


def test_text_edits_not_saved_are_told_by_their_first_sixty_characters() -> None:
    long = "x" * 70
    changes = [MemoryEdit(memory_id="m-lisbon", content=long), MemoryEdit(memory_id="m-veggie", type="health"),
               MemoryEdit(memory_id="m-amsterdam", content="")]
    assert edits.unsaved_texts(ROWS, changes) == [("The user lives in Lisbon.", "x" * 60),
                                                   ("The user lives in Amsterdam.", "")]


def test_reactivating_warns_only_of_shown_memories_whose_replacement_is_still_active() -> None:
    oslo = memory("m-oslo", "The user lived in Oslo.", status="outdated", superseded_by="m-bergen")
    bergen = memory("m-bergen", "The user lived in Bergen.", status="outdated")
    rows = [*ROWS, oslo]
    replacements = {**REPLACEMENTS, "m-bergen": bergen}
    assert edits.still_replaced(["m-amsterdam", "m-oslo", "m-veggie", "m-unknown"], rows, replacements) == [
        ("The user lives in Amsterdam.", "The user lives in Lisbon.")]
    assert edits.still_replaced([], rows, replacements) == []
