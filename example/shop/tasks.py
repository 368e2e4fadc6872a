"""The shop's background tasks, one for each thing Taskmill does.

The demo (`manage.py taskmill_demo`) enqueues each of them and starts a worker
(`manage.py taskmill worker`) that runs them; under `make serve` the worker embedded in
runserver runs them, and the periodic and cron schedules below, for as long as the site runs.
"""

import asyncio
import logging
import sys
import time
from datetime import timedelta

from django.core.mail import send_mail
from django.db.models import Count, Sum
from django.tasks import TaskContext

from taskmill import cron, periodic, task
from taskmill.context import TaskmillContext

from .models import Customer, Order

logger = logging.getLogger(__name__)

# What export_orders logs when it sees it was cancelled and stops.
STOPPED_CLEANLY = "cancelled: stopping after"

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
def reserve_stock(order: Order) -> str:
    """Set the order's items aside in the warehouse (slower than the charge)."""
    time.sleep(0.5)
    return f"stock reserved for {order}"


@task
def ship_order(order: Order) -> str:
    """Ship a paid order; enqueued with depends_on=[charge_order, reserve_stock], so it runs
    once both have succeeded and the order is always paid here."""
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


@task(takes_context=True)
def import_catalogue(context: TaskmillContext, products: int) -> int:
    """A long task that reports its progress and writes output (print, logging, context.log),
    which the worker stores as it runs: the demo draws the bar and shows the lines live."""
    print(f"importing {products} products from the supplier feed")  # noqa: T201 - captured
    for done in range(1, products + 1):
        time.sleep(0.1)  # fetch and save one product
        if done % 20 == 0:
            logger.info("imported %s of %s products", done, products)
        if done == products // 2:
            print("product 'teapot-xl' has no price; skipped", file=sys.stderr)  # noqa: T201
        context.set_progress(done, products, "products imported")
    context.log.info("catalogue import finished")
    return products


@task(takes_context=True)
def export_orders(context: TaskmillContext, batches: int) -> int:
    """A long task that can be cancelled cleanly: between two batches it asks
    context.is_cancelled() and, if so, stops at a consistent point instead of being killed."""
    exported = 0
    for _ in range(batches):
        if context.is_cancelled():
            context.log.warning("%s %s of %s batches", STOPPED_CLEANLY, exported, batches)
            break
        time.sleep(0.1)  # write one batch
        exported += 1
        context.set_progress(exported, batches, "batches exported")
    return exported


# Two schedules: the worker that leads (the demo's, or the one runserver starts) enqueues
# their runs. Their results are kept ten minutes, so a site left running stays tidy.
CHECK_PAYMENTS_EVERY = timedelta(seconds=5)  # often enough for the demo to see three runs


@periodic(every=CHECK_PAYMENTS_EVERY, start_now=True)
@task(result_ttl=timedelta(minutes=10))
def check_payments() -> int:
    """Every 5 seconds: count the orders still waiting for their payment."""
    return Order.objects.filter(status=Order.Status.NEW).count()


@cron("* * * * *")
@task(result_ttl=timedelta(minutes=10))
def expire_baskets() -> str:
    """At the start of every minute (cron "* * * * *"): forget abandoned baskets."""
    return "no basket older than a day"
