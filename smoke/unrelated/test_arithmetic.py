"""Tests of a project that knows nothing of ims_repo (plain pytest, a fixture, a param)."""

import pytest


@pytest.fixture
def numbers() -> list[int]:
    return [3, 1, 2]


def test_sorted(numbers: list[int]) -> None:
    assert sorted(numbers) == [1, 2, 3]


@pytest.mark.parametrize(("a", "b", "total"), [(1, 2, 3), (2, 2, 4)])
def test_add(a: int, b: int, total: int) -> None:
    assert a + b == total
