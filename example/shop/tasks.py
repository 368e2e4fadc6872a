"""The shop's background tasks, one for each thing Taskmill does today.

The demo (`manage.py taskmill_demo`) enqueues each of them; a worker
(`manage.py taskmill worker`) runs them.
"""

import asyncio
import time

from django.core.mail import send_mail
from django.db.models import Count, Sum
from django.tasks import TaskContext

from taskmill import task

from .models import Customer, Order

RATES = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85}


@task
def add(a: int, b: int) -> int:
    """A quick task: the smallest thing a worker can run."""
    return a + b


@task
def send_welcome_email(customer: Customer) -> str:
    """Greet a new customer; the customer arrives fetched fresh from the database."""
    send_mail(
        subject="Welcome to the shop",
        message=f"Hello {customer.name}, thank you for signing up.",
        from_email=None,
        recipient_list=[customer.email],
    )
    return customer.email


@task
def send_reminder(customer: Customer) -> str:
    """Remind a customer of their basket; the demo defers it with run_after."""
    send_mail(
        subject="You left something in your basket",
        message=f"Hello {customer.name}, your basket is waiting for you.",
        from_email=None,
        recipient_list=[customer.email],
    )
    return customer.email


@task
def charge_order(order: Order) -> str:
    """Take the payment for an order."""
    order.status = Order.Status.PAID
    order.save(update_fields=["status"])
    return f"charged {order.total}"


@task
def ship_order(order: Order) -> str:
    """Ship a paid order; enqueued with depends_on=[charge_order], so it is always paid here."""
    if order.status != Order.Status.PAID:
        raise ValueError(f"{order} is {order.status}, not paid")
    order.status = Order.Status.SHIPPED
    order.save(update_fields=["status"])
    return f"{order} shipped"


@task(takes_context=True, max_attempts=3, retry_delay=0.2)
def flaky(context: TaskContext) -> str:  # type: ignore[type-arg]  # generic only in the stubs
    """Fail on the first two attempts, as a call to a shaky service would, then succeed."""
    if context.attempt < 3:
        raise ConnectionError(f"warehouse API unavailable (attempt {context.attempt})")
    return f"stock synced on attempt {context.attempt}"


@task
def always_fails(row: int) -> None:
    """Fail on its only attempt (max_attempts defaults to 1)."""
    raise ValueError(f"row {row}: price 'twelve' is not a number")


@task
def publish_catalogue() -> str:
    """Enqueued with depends_on=[always_fails], so it never runs."""
    return "published"


@task(timeout=1)
def overrun(seconds: float) -> float:
    """Sleep past its one-second timeout; the worker kills its process."""
    time.sleep(seconds)
    return seconds


@task
async def fetch_rates(base: str) -> dict[str, float]:
    """An async def task: the worker runs it in an event loop."""
    await asyncio.sleep(0.05)
    return {currency: round(rate / RATES[base], 4) for currency, rate in RATES.items()}


@task(queue_name="reports", priority=10)
def sales_report(month: str) -> dict[str, object]:
    """Sum the orders of a month ("YYYY-MM"); runs in the reports queue, before tasks of
    lower priority."""
    year, number = (int(part) for part in month.split("-"))
    totals = Order.objects.filter(created_at__year=year, created_at__month=number).aggregate(
        orders=Count("id"), revenue=Sum("total")
    )
    return {"orders": totals["orders"], "revenue": f"{totals['revenue'] or 0:.2f}"}


@task(unique=True)
def rebuild_search_index() -> int:
    """Reindex every order; unique, so enqueueing it again while queued adds nothing."""
    time.sleep(0.2)
    return Order.objects.count()


@task
def long_job(steps: int) -> int:
    """Work for a long time (steps tenths of a second); the demo cancels it while it runs."""
    for _ in range(steps):
        time.sleep(0.1)
    return steps
