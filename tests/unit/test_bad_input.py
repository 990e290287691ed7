"""Issue 21: every public entry point refuses bad input before any request, with the provider's own
``InvalidInputError`` naming the field, never a bare ``TypeError`` / ``ValueError`` / ``RecursionError``.

The entry points: ``SendContactOperator``, ``SendContactToManyOperator``, ``ChatApiNotifier`` (``notify`` and
``async_notify``), ``ChatApiHook`` (``send_contact``, ``asend_contact``, ``asend_to_many``, ``get_delivery``,
``aget_deliveries``) and ``ChatApiDeliverySensor``. Each argument gets a Hypothesis strategy of bad values,
and each is tested at the moment it can be judged: an option that is not templated when the DAG is parsed
(the constructor raises), a templated field once rendered (``execute``, ``notify`` or the hook's call with
the rendered value; a few go through Jinja itself). Every call runs against a 1msg stand-in that the
connection ``chatapi_default`` points at, so a request made would be recorded; the controls show that
the same calls with good values do reach it.

``CHATAPI_HYPOTHESIS=deep`` runs ten times the examples, with fresh randomness.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_chatapi.exceptions import InvalidInputError
from airflow_provider_chatapi.hooks.chatapi import ChatApiHook
from airflow_provider_chatapi.notifications.chatapi import ChatApiNotifier
from airflow_provider_chatapi.operators.chatapi import SendContactOperator, SendContactToManyOperator
from airflow_provider_chatapi.sensors.chatapi import ChatApiDeliverySensor
from airflow_provider_chatapi.testing import StandInGateway

DEEP = os.environ.get("CHATAPI_HYPOTHESIS") == "deep"
GENERATED = settings(
    max_examples=200 if DEEP else 20,
    deadline=None,
    derandomize=not DEEP,  # the suite's run is reproducible; a deep run explores
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
SHORT_MESSAGE = 1000  # characters: an error quotes at most 200 of the value, whatever its size

# ---- the stand-in and the check ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway() -> Iterator[StandInGateway]:
    """One 1msg stand-in for the module (Hypothesis runs many examples in one test), which the connection
    ``chatapi_default`` points at: the hook has its address, so any request would arrive there."""
    with StandInGateway(dialect="1msg") as stand_in, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_CHATAPI_DEFAULT", stand_in.connection_json())
        yield stand_in


def assert_refused(gateway: StandInGateway, field: str, call: Callable[[], Any]) -> None:
    """``call`` raises the provider's refusal naming ``field`` (or ``field[i]…`` / ``field.…`` within it), in a
    short message, and no request reached the stand-in. A task fails with it as the cause of an
    ``AirflowFailException`` (no retries: the input will not get better)."""
    gateway.reset()
    with pytest.raises((InvalidInputError, AirflowFailException)) as raised:
        call()
    error = raised.value.__cause__ if isinstance(raised.value, AirflowFailException) else raised.value
    assert isinstance(error, InvalidInputError), f"{type(raised.value).__name__}: {raised.value}"
    assert error.field == field or error.field.startswith((f"{field}[", f"{field}.")), error.field
    assert str(error).startswith(f"{error.field}=")
    assert len(str(error)) < SHORT_MESSAGE
    assert gateway.requests == []


# ---- bad values --------------------------------------------------------------------------------


class Unprintable:
    """An object whose ``repr`` and ``str`` fail, as a broken upstream object's may."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


YEAR = 366 * 86400.0
# Drawn by their digits: an int of 5,000 has no repr, and Hypothesis shows its strategies by theirs.
HUGE_INTS = st.sampled_from([5000, -5000, 400]).map(lambda digits: int(math.copysign(1, digits)) * 10 ** abs(digits))
NESTED_100 = "[" * 100 + "79001111111" + "]" * 100
BIG = {
    "nested past the stack": "[" * 100_000,
    "nested 500 deep": "[" * 500 + "]" * 500,
    "nested 100 deep": NESTED_100,
    "a 5,000-digit int in a list": "[" + "7" * 5000 + "]",
    "a 5,000-digit number": "7" * 5000,
    "1.2 MB": "[" + "1," * 600_000 + "]",
    "100 kB of digits": "1" * 100_000,
    "100 kB of m": "m" * 100_000,
}
"""Big values, drawn by their names: Hypothesis shows a strategy by its values, and a failure by its draws."""


def big(*names: str) -> st.SearchStrategy[str]:
    return st.sampled_from(names).map(BIG.__getitem__)


NUMBER_TEXT = st.one_of(st.integers(-(10**6), 10**6).map(str), st.floats().map(str), st.just(""))
JUNK = st.one_of(
    st.binary(max_size=20),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sets(st.floats(allow_nan=False), max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.builds(object),
    st.builds(Unprintable),
    st.lists(st.none(), min_size=1, max_size=3),
)
"""Values of no type any argument takes."""


def numbers_outside(least: float, most: float) -> st.SearchStrategy[Any]:
    """Ints and floats not from ``least`` to ``most``: NaN, the infinities, negatives, zero, and ints of
    hundreds of digits (past any bound, or past float's range where there is none)."""
    finite = math.isfinite(most)
    return st.one_of(
        st.floats(max_value=least, exclude_max=True),
        st.floats(min_value=most, exclude_min=True) if finite else st.just(math.inf),
        st.just(math.nan),
        st.integers(max_value=math.ceil(least) - 1),
        st.integers(min_value=math.floor(most) + 1) if finite else st.nothing(),
        HUGE_INTS,
    )


def not_a_flag(value: Any) -> bool:
    return not isinstance(value, bool) and not (isinstance(value, str) and value.strip().lower() in ("true", "false"))


BAD_FLAG = st.one_of(
    st.sampled_from(["yes", "no", "1", "0", "", "on", "off", "truthy", "False!"]),
    st.text(max_size=8),
    st.integers(),
    st.floats(),
    st.none(),
    JUNK,
).filter(not_a_flag)
BAD_TIMEOUT = st.one_of(numbers_outside(0.001, 3600), st.booleans(), NUMBER_TEXT, JUNK)
BAD_RETRIES = st.one_of(
    st.integers(max_value=-1), st.integers(min_value=101), HUGE_INTS, st.floats(), st.booleans(), NUMBER_TEXT, JUNK
)
BAD_IN_FLIGHT = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=1001),
    HUGE_INTS,
    st.floats(),
    st.booleans(),
    st.none(),
    NUMBER_TEXT,
    JUNK,
)
BAD_PER_SECOND = st.one_of(numbers_outside(1 / 3600, math.inf), st.booleans(), NUMBER_TEXT, JUNK)
BAD_SPAN = st.one_of(
    numbers_outside(0.001, YEAR),
    st.timedeltas(max_value=timedelta(0)),
    st.timedeltas(min_value=timedelta(seconds=YEAR + 1)),
    st.none(),
    st.booleans(),
    NUMBER_TEXT,
    JUNK,
)
BAD_WAIT_FOR = st.one_of(st.text(max_size=12), st.none(), st.integers(), JUNK).filter(
    lambda value: value not in ("delivered", "read")
)
BAD_CONN_ID = st.one_of(
    st.none(),
    st.integers(),
    JUNK,
    st.sampled_from(["", "chatapi default", "chatapi_default\n", "<b>chatapi</b>", "x" * 251]),
    big("100 kB of m"),
    st.text(min_size=1, max_size=10).map(lambda text: f"{text} {text}"),  # whitespace inside
)

LETTERS = st.text(alphabet="abcxyz<>/&;=\"'", min_size=1, max_size=12)
BAD_PHONE = st.one_of(
    st.booleans(),
    st.floats(),
    st.integers(max_value=0),
    st.integers(min_value=1, max_value=999_999),  # under seven digits
    st.integers(min_value=10**15),
    HUGE_INTS,
    LETTERS,
    st.sampled_from(["", "   ", "<b>79001111111</b>", "7900111111\x00", "+7 900 abc", "+"]),
    big("100 kB of digits", "a 5,000-digit number"),
    JUNK,
)
SUFFIXES = ["@c.us", "@g.us", "@lid", "@newsletter"]
BAD_CHAT_ID = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    JUNK,
    st.sampled_from(["", "   ", "79001111111", "@", "@c.us@g.us"]),
    # Markup, whitespace among letters, nothing, or 100 kB before every suffix (1msg takes no @newsletter).
    st.builds(
        str.__add__,
        st.one_of(
            st.sampled_from(["<b>1</b>", "", "a b", "x\ny", "\t", "<script>", "1&amp;2", "120363\x00"]),
            big("100 kB of digits"),
        ),
        st.sampled_from(SUFFIXES),
    ),
    st.builds(
        str.__add__,
        st.integers(10**9, 10**14).map(str),
        st.sampled_from(["@s.whatsapp.net", "@broadcast", "@newsletter", "@c.us.", "@", "@g.us@c.us", "@lid@c.us"]),
    ),
)
BAD_ITEM = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
    st.builds(Unprintable),
    st.integers(max_value=0),
    HUGE_INTS,
    LETTERS,
    st.sampled_from(["", "79001111111@c.us@c.us", "<b>1</b>@lid", "x@newsletter"]),
    big("a 5,000-digit number"),
)
RENDERED_TEXT = ["{'79001111111': 'Ann'}", "[1e400]", "[]", "", "   ", "79001111111,,79002222222"]
RENDERED = st.one_of(big(*[name for name in BIG if name != "100 kB of m"]), st.sampled_from(RENDERED_TEXT))


def bad_ids(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Bad ``contact_ids`` or ``recipients``, ``item`` a bad one among them (after a good one, to be found)."""
    return st.one_of(
        JUNK,
        RENDERED,
        st.booleans(),
        st.floats(),
        st.integers(max_value=0),
        HUGE_INTS,
        st.just([]),
        st.lists(item, min_size=1, max_size=3).map(lambda items: ["79001111111", *items]),
        st.sets(st.one_of(st.floats(), st.binary(max_size=4), st.tuples(st.integers())), min_size=1, max_size=3),
    )


BAD_RECIPIENTS = bad_ids(BAD_ITEM)
BAD_CONTACT_IDS = bad_ids(st.one_of(BAD_ITEM, st.sampled_from(["120363123456789012@g.us", "abc@lid"])))
"""A group or a linked id is a recipient, never a contact."""

CARD = {"name": "Ann Lee", "phone": "+7 900 111-11-11"}
BAD_TEXT = st.one_of(
    st.sampled_from(["a\x00b", "x\ny", "", "  ", "\x1b[31mred"]),
    big("100 kB of m"),
    st.floats(),
    st.booleans(),
    st.builds(Unprintable),
    st.binary(max_size=5),
    HUGE_INTS,
)
BAD_CONTACTS = st.one_of(
    JUNK.filter(lambda value: not isinstance(value, dict)),  # a dict is one card: the card strategy covers it
    # Not the 1.2 MB list: cards.py parses rendered cards of any size (2 s for that one) before refusing them.
    big(*[name for name in BIG if name not in ("100 kB of m", "1.2 MB")]),
    st.sampled_from(RENDERED_TEXT),
    st.just([]),
    st.builds(
        lambda key, value: [CARD, {**CARD, key: value}],
        st.sampled_from(["name", "phone", "email", "url", "org", "birthday"]),
        BAD_TEXT,
    ),
    st.builds(
        lambda key, value: [{**CARD, key: value}],
        st.sampled_from(["phones", "emails", "urls", "addresses"]),
        st.one_of(st.lists(BAD_TEXT, min_size=1, max_size=2), st.just([]), st.just({}), st.floats()),
    ),
    st.dictionaries(st.text(max_size=8), BAD_TEXT, max_size=2).map(lambda extra: [{**extra, "nickname": "Annie"}]),
)
BAD_MESSAGE_ID = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    JUNK,
    st.sampled_from(["", "   ", "a b", "wamid.A\nB", "\t"]),
    big("100 kB of m"),
)
BAD_MESSAGE_IDS = st.one_of(
    BAD_MESSAGE_ID.filter(lambda value: not isinstance(value, (list, bytes))),
    st.sampled_from(["[]", "['wamid.A', None]"]),
    big("nested past the stack"),
    st.lists(BAD_MESSAGE_ID, min_size=1, max_size=3).map(lambda items: ["wamid.A", *items]),
)
"""Bad ``message_ids`` of the hook's batch (whose empty list is an empty batch) and of the sensor."""

# ---- when the DAG is parsed: the options ---------------------------------------------------------

SINGLE = {"contact_ids": ["79001111111"], "phone": "79002222222"}
MANY = {"contact_ids": ["79001111111"], "recipients": ["79002222222"]}
BUILT: dict[str, Callable[..., Any]] = {
    "SendContactOperator": lambda **option: SendContactOperator(task_id="send", **SINGLE, **option),
    "SendContactToManyOperator": lambda **option: SendContactToManyOperator(task_id="many", **MANY, **option),
    "ChatApiNotifier": lambda **option: ChatApiNotifier(**SINGLE, **option),
    "ChatApiHook": lambda **option: ChatApiHook(**option),
    "ChatApiDeliverySensor": lambda **option: ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", **option),
}
OPTIONS: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    **{
        (built, option): strategy
        for built in ("SendContactOperator", "SendContactToManyOperator", "ChatApiNotifier", "ChatApiHook")
        for option, strategy in [("timeout", BAD_TIMEOUT), ("max_retries", BAD_RETRIES)]
    },
    ("SendContactOperator", "at_least_once"): BAD_FLAG,
    ("SendContactToManyOperator", "at_least_once"): BAD_FLAG,
    ("SendContactToManyOperator", "max_in_flight"): BAD_IN_FLIGHT,
    ("SendContactToManyOperator", "max_per_second"): BAD_PER_SECOND,
    ("ChatApiHook", "chatapi_conn_id"): BAD_CONN_ID,  # templated elsewhere: checked when the hook is built
    ("ChatApiDeliverySensor", "timeout"): BAD_SPAN,
    ("ChatApiDeliverySensor", "poke_interval"): BAD_SPAN,
    ("ChatApiDeliverySensor", "deferrable"): BAD_FLAG,
    ("ChatApiDeliverySensor", "fail_on_job_ids"): BAD_FLAG,
    ("ChatApiDeliverySensor", "wait_for"): BAD_WAIT_FOR,
    ("ChatApiDeliverySensor", "max_in_flight"): BAD_IN_FLIGHT,
}


@pytest.mark.parametrize(("built", "option"), OPTIONS, ids=[f"{built}-{option}" for built, option in OPTIONS])
@GENERATED
@given(data=st.data())
def test_a_bad_option_is_refused_when_the_dag_is_parsed(
    gateway: StandInGateway, built: str, option: str, data: st.DataObject
) -> None:
    value = data.draw(OPTIONS[built, option], label=option)
    assert_refused(gateway, option, lambda: BUILT[built](**{option: value}))


def test_the_options_take_their_good_values() -> None:
    """The control for the bounds above: their edges, a timedelta for the sensor, rendered flags."""
    operator = SendContactToManyOperator(
        task_id="many", **MANY, timeout=3600, max_retries=100, max_in_flight=1000, max_per_second=1 / 3600
    )
    assert (operator.timeout, operator.max_retries, operator.max_in_flight) == (3600.0, 100, 1000)
    assert ChatApiNotifier(**SINGLE, timeout=0.001, max_retries=0).timeout == 0.001
    sensor = ChatApiDeliverySensor(
        task_id="wait", message_ids="wamid.A", timeout=timedelta(days=366), poke_interval=timedelta(seconds=5)
    )
    assert (sensor.timeout_seconds, sensor.poke_interval) == (YEAR, 5.0)
    assert ChatApiDeliverySensor(task_id="wait", message_ids="wamid.A", deferrable=" False ").deferrable is False
    assert ChatApiHook("a-b.c:d/e").chatapi_conn_id == "a-b.c:d/e"


# ---- when rendered: the templated fields and the calls' arguments ------------------------------


async def _asend(**arguments: Any) -> Any:
    hook = ChatApiHook()
    try:
        return await hook.asend_contact(**arguments)
    finally:
        await hook.aclose()


async def _asend_to_many(**arguments: Any) -> Any:
    hook = ChatApiHook()
    try:
        return await hook.asend_to_many(**arguments)
    finally:
        await hook.aclose()


async def _aget_deliveries(**arguments: Any) -> Any:
    hook = ChatApiHook()
    try:
        return await hook.aget_deliveries(**arguments)
    finally:
        await hook.aclose()


def _send(**arguments: Any) -> Any:
    with ChatApiHook() as hook:
        return hook.send_contact(**arguments)


def _get_delivery(**arguments: Any) -> Any:
    with ChatApiHook() as hook:
        return hook.get_delivery(**arguments)


RUN: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "SendContactOperator": (lambda **a: SendContactOperator(task_id="send", **a).execute({}), SINGLE),
    "SendContactToManyOperator": (lambda **a: SendContactToManyOperator(task_id="many", **a).execute({}), MANY),
    "ChatApiNotifier.notify": (lambda **a: ChatApiNotifier(**a).notify({}), SINGLE),
    "ChatApiNotifier.async_notify": (lambda **a: asyncio.run(ChatApiNotifier(**a).async_notify({})), SINGLE),
    "ChatApiHook.send_contact": (_send, SINGLE),
    "ChatApiHook.asend_contact": (lambda **a: asyncio.run(_asend(**a)), SINGLE),
    "ChatApiHook.asend_to_many": (lambda **a: asyncio.run(_asend_to_many(**a)), MANY),
    "ChatApiHook.get_delivery": (_get_delivery, {"message_id": "wamid.A"}),
    "ChatApiHook.aget_deliveries": (lambda **a: asyncio.run(_aget_deliveries(**a)), {"message_ids": ["wamid.A"]}),
    "ChatApiDeliverySensor": (
        lambda **a: ChatApiDeliverySensor(
            task_id="wait", deferrable=False, poke_interval=0.05, timeout=0.3, **a
        ).execute({}),
        {"message_ids": ["wamid.A"]},
    ),
}
SEND_FIELDS = [
    ("contact_ids", BAD_CONTACT_IDS),
    ("contacts", BAD_CONTACTS),
    ("phone", BAD_PHONE),
    ("chat_id", BAD_CHAT_ID),
    ("quoted_message_id", BAD_MESSAGE_ID),
]
MANY_FIELDS = [
    ("recipients", BAD_RECIPIENTS),
    ("contact_ids", BAD_CONTACT_IDS),
    ("contacts", BAD_CONTACTS),
    ("quoted_message_id", BAD_MESSAGE_ID),
]
CONN_ID = ("chatapi_conn_id", BAD_CONN_ID)
FIELDS: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    **{("SendContactOperator", field): bad for field, bad in [*SEND_FIELDS, CONN_ID]},
    **{("SendContactToManyOperator", field): bad for field, bad in [*MANY_FIELDS, CONN_ID]},
    **{("ChatApiNotifier.notify", field): bad for field, bad in [*SEND_FIELDS, CONN_ID]},
    **{("ChatApiNotifier.async_notify", field): bad for field, bad in [*SEND_FIELDS, CONN_ID]},
    **{("ChatApiHook.send_contact", field): bad for field, bad in SEND_FIELDS},
    **{("ChatApiHook.asend_contact", field): bad for field, bad in SEND_FIELDS},
    **{("ChatApiHook.asend_to_many", field): bad for field, bad in MANY_FIELDS},
    ("ChatApiHook.asend_to_many", "max_in_flight"): BAD_IN_FLIGHT,
    ("ChatApiHook.asend_to_many", "max_per_second"): BAD_PER_SECOND,
    ("ChatApiHook.get_delivery", "message_id"): BAD_MESSAGE_ID,
    ("ChatApiHook.aget_deliveries", "message_ids"): BAD_MESSAGE_IDS,
    ("ChatApiHook.aget_deliveries", "max_in_flight"): BAD_IN_FLIGHT,
    ("ChatApiDeliverySensor", "message_ids"): st.one_of(BAD_MESSAGE_IDS, st.just([])),  # nothing to wait for
    ("ChatApiDeliverySensor", "chatapi_conn_id"): BAD_CONN_ID,
}


def arguments_with(good: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """The good arguments with ``field`` set to ``value``, less the one it stands in for (exactly one of
    ``phone`` / ``chat_id``, and of ``contact_ids`` / ``contacts``, is given)."""
    instead = {"chat_id": "phone", "contacts": "contact_ids"}.get(field)
    return {**{name: given for name, given in good.items() if name != instead}, field: value}


@pytest.mark.parametrize(("entry", "field"), FIELDS, ids=[f"{entry}-{field}" for entry, field in FIELDS])
@GENERATED
@given(data=st.data())
def test_a_bad_rendered_value_is_refused_before_any_request(
    gateway: StandInGateway, entry: str, field: str, data: st.DataObject
) -> None:
    run, good = RUN[entry]
    value = data.draw(FIELDS[entry, field], label=field)
    assert_refused(gateway, field, lambda: run(**arguments_with(good, field, value)))


@pytest.mark.parametrize("entry", RUN)
def test_the_same_calls_with_good_values_reach_the_stand_in(gateway: StandInGateway, entry: str) -> None:
    """The control: with its good arguments each entry point does make a request, so "none" can fail."""
    gateway.reset()
    run, good = RUN[entry]
    with contextlib.suppress(AirflowSensorTimeout):  # the sensor polled the stand-in, which never acks "wamid.A"
        run(**good)
    assert gateway.requests != []


# ---- through Jinja: the value a template renders ------------------------------------------------

JINJA = [
    ("SendContactOperator", "contact_ids", "[" * 100_000),
    ("SendContactOperator", "contact_ids", NESTED_100),
    ("SendContactOperator", "chat_id", "<b>120363123456789012</b>@g.us"),
    ("SendContactOperator", "phone", "79001111111\n79002222222"),
    ("SendContactOperator", "chatapi_conn_id", "chatapi default"),
    ("SendContactToManyOperator", "recipients", "['79002222222', 'x@newsletter']"),
    ("SendContactToManyOperator", "contacts", "[{'name': 'Ann', 'phone': 'none'}]"),
    ("ChatApiNotifier", "quoted_message_id", "wamid A"),
    ("ChatApiNotifier", "contact_ids", "[" + "7" * 5000 + "]"),
    ("ChatApiDeliverySensor", "message_ids", "[" * 100_000),
]


TEMPLATED: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "SendContactOperator": (lambda **a: SendContactOperator(task_id="send", **a), SINGLE),
    "SendContactToManyOperator": (lambda **a: SendContactToManyOperator(task_id="many", **a), MANY),
    "ChatApiNotifier": (lambda **a: ChatApiNotifier(**a), SINGLE),
    "ChatApiDeliverySensor": (
        lambda **a: ChatApiDeliverySensor(task_id="wait", deferrable=False, **a),
        {"message_ids": "wamid.A"},
    ),
}


@pytest.mark.parametrize(("built", "field", "rendered"), JINJA, ids=[f"{b}-{f}" for b, f, _ in JINJA])
def test_a_field_rendered_by_jinja_is_refused_before_any_request(
    gateway: StandInGateway, built: str, field: str, rendered: str
) -> None:
    """The template renders the bad value (as text, as a non-native environment renders anything): the DAG
    parses, its field holding only the template, and the task refuses the rendered value."""
    make, good = TEMPLATED[built]
    task = make(**arguments_with(good, field, "{{ params.bad }}"))
    # "dag": Airflow 2.11 and 3.0 read it when rendering a notifier's fields.
    task.render_template_fields({"params": {"bad": rendered}, "dag": None})  # type: ignore[arg-type]
    assert getattr(task, field) == rendered
    run = task.notify if isinstance(task, ChatApiNotifier) else task.execute
    assert_refused(gateway, field, lambda: run({}))


# ---- ids, lists and cards: what the number and card readers must refuse ----------------------------


SEPARATED = st.tuples(st.integers(1, 10), st.sampled_from([" ", "\n", "\t", "-", "(", ")", "."])).map(
    lambda cut: f"{'79001112222'[: cut[0]]}{cut[1]}{'79001112222'[cut[0] :]}@c.us"
)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("ChatApiHook.send_contact", "chat_id"),
        ("SendContactToManyOperator", "recipients"),
        ("ChatApiNotifier.notify", "contact_ids"),
    ],
)
@settings(GENERATED, max_examples=5)
@given(chat=SEPARATED)
def test_a_whatsapp_id_with_a_space_newline_or_sign_inside_is_refused(
    gateway: StandInGateway, entry: str, field: str, chat: str
) -> None:
    run, good = RUN[entry]
    value = chat if field == "chat_id" else [chat]
    assert_refused(gateway, field, lambda: run(**arguments_with(good, field, value)))


REFUSED_BY_THE_READERS = [
    pytest.param(
        "SendContactOperator",
        "contact_ids",
        {Unprintable(), Unprintable()},
        id="set-of-unprintables",
    ),
    pytest.param(
        "ChatApiNotifier.notify",
        "quoted_message_id",
        "<b>1</b>",
        id="quoted-markup",
    ),
    pytest.param(
        "ChatApiHook.asend_contact",
        "quoted_message_id",
        "wamid.A\x00",
        id="quoted-nul",
    ),
    pytest.param(
        "SendContactOperator",
        "contacts",
        [{**CARD, "addresses": [{"city": "Riga", "zip": 10**5000}]}],
        id="zip-5000-digits",
    ),
    pytest.param(
        "ChatApiHook.send_contact",
        "contacts",
        [{**CARD, Unprintable(): "x"}],
        id="card-key-unprintable",
    ),
    pytest.param(
        "ChatApiHook.send_contact",
        "contacts",
        [{**CARD, "k" * 100_000: "x"}],
        id="card-key-100kB",
    ),
]


@pytest.mark.parametrize(("entry", "field", "value"), REFUSED_BY_THE_READERS)
def test_odd_ids_lists_and_cards_are_refused(gateway: StandInGateway, entry: str, field: str, value: Any) -> None:
    run, good = RUN[entry]
    assert_refused(gateway, field, lambda: run(**arguments_with(good, field, value)))


def test_a_linked_id_written_in_capitals_goes_out_as_1msg_takes_it(gateway: StandInGateway) -> None:
    """Before, ``…@LID`` was sent as written and 1msg refused it after the request."""
    ChatApiHook().send_contact(["+7 900 111-11-11"], chat_id="120363123456@LID")
    (request,) = gateway.requests
    assert request.json["chatId"] == "120363123456@lid"
