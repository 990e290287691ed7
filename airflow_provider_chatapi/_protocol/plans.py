"""Exchanges with the gateway as generator plans, driven by a sync or an async transport.

A plan (:data:`Plan`) yields each :class:`Call` (a request and how to read its answer), is sent the
parsed answer or has the error thrown in, and returns its result. Plans do no I/O of their own, so the
hook's ``requests`` and ``httpx`` transports run the very same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from airflow_provider_chatapi._protocol.http import ApiRequest, ApiResponse
    from airflow_provider_chatapi.exceptions import ChatApiError

__all__ = ["Call", "Plan", "PlanSteps"]

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request for a transport to make, and how to read its answer (``parse`` raises on failure)."""

    request: ApiRequest
    parse: Callable[[ApiResponse], T]


Plan = Generator[Call[Any], Any, T]
"""An exchange with the gateway as a generator: it yields each :class:`Call`, is sent the call's parsed
answer or has its error thrown in, and returns its result; see :class:`PlanSteps`."""


class PlanSteps(Generic[T]):
    """Steps through a plan for a transport::

    steps = PlanSteps(plan)
    for call in steps:
        try:
            steps.answer(transport(call))
        except ChatApiError as error:
            steps.fail(error)
    return steps.result
    """

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self._resume: Callable[[], Call[Any]] = lambda: plan.send(None)
        self.result: T

    def __iter__(self) -> PlanSteps[T]:
        return self

    def __next__(self) -> Call[Any]:
        try:
            return self._resume()
        except StopIteration as done:
            self.result = done.value
            raise StopIteration from None

    def answer(self, value: Any) -> None:
        self._resume = lambda: self._plan.send(value)

    def fail(self, error: ChatApiError) -> None:
        self._resume = lambda: self._plan.throw(error)
