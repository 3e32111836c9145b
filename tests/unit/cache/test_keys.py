"""Cache keys (stable across processes) and the strict JSON serializer's errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths import REPO
from tests.unit.cache.support import FakeRemote, unique
from ttbt5_otel._cache import (
    CacheError,
    CacheSerializationError,
    HierarchicalCache,
    JsonSerializer,
    KeyBuilder,
    MemoryCache,
    PickleSerializer,
    cached,
)
from ttbt5_otel._cache.keys import MAX_ARGUMENTS_LENGTH, key_from_arguments
from ttbt5_otel._cache.serialization import Unstorable


def lookup_user(user_id: int, fields: tuple[str, ...] = ("name",), *, active: bool = True) -> None:
    del user_id, fields, active


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def variadic(*args: int, **kwargs: int) -> None:
    del args, kwargs


class Service:
    def method(self, item: str) -> None:
        del item


def test_key_is_module_qualname_and_canonical_arguments():
    """Positional, keyword and default spellings of one call share one key."""
    build = KeyBuilder(lookup_user)
    expected = f'{__name__}.lookup_user:{{"active":true,"fields":["name"],"user_id":7}}'
    assert build((7,), {}) == expected
    assert build((), {"user_id": 7}) == expected
    assert build((7, ("name",)), {"active": True}) == expected
    assert build((7, ["name"]), {}) == expected
    assert build((8,), {}) != expected


def test_key_types_are_distinguished():
    """1, 1.0, True and "1" give four keys."""
    build = KeyBuilder(lookup_user)
    keys = {build((value,), {}) for value in (1, 1.0, True, "1")}
    assert len(keys) == 4


def test_key_of_richer_arguments_is_canonical():
    """Sets are sorted; enums, dates, bytes and dataclasses have fixed forms."""
    build = KeyBuilder(variadic)
    first = build(
        ({3, 1, 2}, Color.RED, dt.date(2024, 1, 2), b"\x01", Point(1, 2)), {"z": 1, "a": 2}
    )
    second = build(
        ({2, 3, 1}, Color.RED, dt.date(2024, 1, 2), b"\x01", Point(1, 2)), {"a": 2, "z": 1}
    )
    assert first == second
    assert '"$enum":"Color.RED"' in first
    assert '"2024-01-02"' in first


def test_self_is_left_out_of_method_keys():
    """Two instances share the entry of one argument."""
    build = KeyBuilder(Service.method)
    assert build((Service(), "x"), {}) == build((Service(), "x"), {})
    assert build((Service(), "x"), {}).endswith(':{"item":"x"}')


def test_long_arguments_are_hashed():
    """Past the length limit the argument part becomes a sha256 digest."""
    key = KeyBuilder(lookup_user)(("u" * (MAX_ARGUMENTS_LENGTH + 1),), {})
    prefix, _, digest = key.rpartition(":sha256:")
    assert prefix == f"{__name__}.lookup_user"
    assert len(digest) == 64


def test_unrepresentable_argument_names_function_and_argument():
    """An object without a canonical form is refused, naming the argument."""
    with pytest.raises(CacheError, match=r"lookup_user: argument 'user_id'.*key="):
        KeyBuilder(lookup_user)((object(),), {})


def test_wrong_arguments_raise_type_error_like_the_call():
    """Arguments that do not fit the signature fail as the function itself would."""
    with pytest.raises(TypeError, match="lookup_user"):
        KeyBuilder(lookup_user)((), {"nope": 1})


def test_keys_are_the_same_in_another_process(tmp_path: Path):
    """A fresh interpreter (other hash seed) builds identical keys."""
    script = textwrap.dedent(
        """
        import datetime as dt
        from tests.unit.cache.test_keys import KeyBuilder, lookup_user, variadic, Color
        print(KeyBuilder(lookup_user)((7,), {}))
        print(KeyBuilder(variadic)(({"b", "a", "c"}, Color.RED, dt.date(2024, 1, 2)), {"k": 1}))
        print(KeyBuilder(lookup_user)(("u" * 500,), {}))
        """
    )
    here = [
        KeyBuilder(lookup_user)((7,), {}),
        KeyBuilder(variadic)(({"c", "a", "b"}, Color.RED, dt.date(2024, 1, 2)), {"k": 1}),
        KeyBuilder(lookup_user)(("u" * 500,), {}),
    ]
    root = REPO
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == here


@pytest.mark.parametrize(
    ("value", "path", "kind"),
    [
        ((1, 2), "$", "tuple"),
        ({"a": [1, {2}]}, "$['a'][1]", "set"),
        ({1: "x"}, "$ (key 1)", "int"),
        (float("nan"), "$", "float"),
        (Color.RED, "$", "Color"),
        ([b"raw"], "$[0]", "bytes"),
    ],
)
def test_json_serializer_refuses_values_that_would_change(value, path, kind):
    """Anything that would not come back equal and of the same type is refused."""
    with pytest.raises(Unstorable) as caught:
        JsonSerializer().check(value)
    assert caught.value.path == path
    assert caught.value.value_type == kind


def test_json_round_trips_json_values():
    """JSON values come back equal."""
    value = {"a": [1, 2.5, None, True, "é", {"b": []}]}
    serializer = JsonSerializer()
    serializer.check(value)
    assert serializer.loads(serializer.dumps(value)) == value


def test_pickle_serializer_stores_python_objects():
    """Asked for explicitly, pickle keeps tuples and sets."""
    serializer = PickleSerializer()
    serializer.check((1, {2}))
    assert serializer.loads(serializer.dumps((1, {2}))) == (1, {2})
    with pytest.raises(Unstorable, match="pickle failed"):
        serializer.check(lambda: None)


async def test_unserializable_value_error_names_function_cache_and_type():
    """A cached function returning a tuple to a shared level gets a clear error."""
    name = unique()
    cache = HierarchicalCache(name, l1=MemoryCache(10), l2=FakeRemote())

    @cached(cache)
    async def coordinates(city: str) -> object:
        return (1.5, 2.5)

    with pytest.raises(CacheSerializationError) as caught:
        await coordinates("x")
    message = str(caught.value)
    assert "coordinates" in message
    assert repr(name) in message
    assert "tuple" in message
    assert "list" in message
    # Nothing was half-written: the next call tries again.
    assert len(cache.l1) == 0


async def test_direct_set_of_unserializable_value_names_cache():
    """HierarchicalCache.set names the cache and the type."""
    name = unique()
    cache = HierarchicalCache(name, l2=FakeRemote())
    with pytest.raises(CacheSerializationError, match=rf"cache '{name}'.*object at \$\['k'\]"):
        await cache.set("key", {"k": object()})


def test_memory_only_cache_stores_any_object():
    """Without shared levels there is no serializer and no restriction."""
    cache = MemoryCache(10, name=unique())

    @cached(cache)
    def make() -> object:
        return (1, {2})

    assert make() == (1, {2})


def two(beta: object, alpha: object = None) -> None:
    del beta, alpha


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.floats(allow_nan=False),
    st.lists(st.integers()),
)


@settings(max_examples=300, deadline=None)
@given(beta=scalars, alpha=scalars)
def test_fast_path_keys_equal_the_general_path(beta, alpha):
    """Every spelling gives the key that canonical JSON of the bound arguments gives."""
    build = KeyBuilder(two)
    expected = key_from_arguments(build.prefix, {"alpha": alpha, "beta": beta})
    assert build((beta, alpha), {}) == expected
    assert build((beta,), {"alpha": alpha}) == expected
    assert build((), {"alpha": alpha, "beta": beta}) == expected
    if alpha is None:
        assert build((beta,), {}) == expected
