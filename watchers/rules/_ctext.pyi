from collections.abc import Callable
from typing import TypeVar

_F = TypeVar("_F", bound=tuple[object, ...])

def scan(
    text: str, cache: dict[str, _F], fold: Callable[[str], _F], /
) -> tuple[list[_F], list[str], list[int], list[int], list[int]]: ...
def terms(
    text: str, cache: dict[str, _F], fold: Callable[[str], _F], out: set[str], /
) -> None: ...
def tokens(
    text: str, cache: dict[str, _F], fold: Callable[[str], _F], /
) -> tuple[
    list[_F], list[int], list[str], list[str], list[int], list[int],
    list[int] | None, list[int] | None,
]: ...
def positions(keys: list[str], /) -> dict[str, list[int]]: ...
def forget() -> None: ...
def untrack(*objects: object) -> None: ...
