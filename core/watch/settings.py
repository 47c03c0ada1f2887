"""What the watch's jobs are told by the worker that runs them (``WatchSettings``), in a
module of its own so that every job of the watch (the pass, the review, the alert) reads
it without importing the module that declares the tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import SecretStr

from core.config import DEFAULT_ALERT_DEADLINE_SECONDS, DEFAULT_CONSOLE_URL
from core.watch.decisions import watch_cron


@dataclass(frozen=True)
class WatchSettings:
    interval: timedelta  # WATCH_INTERVAL_SECONDS
    tick: timedelta  # how often the periodic job looks (its cron)
    daily_budget_usd: float = 2.0  # WATCH_DAILY_BUDGET_USD: the reviews' comparisons
    price_per_image_usd: float = 0.03  # COMPARE_PRICE_PER_IMAGE_USD
    webhook_url: SecretStr | None = None  # ALERT_WEBHOOK_URL (None: alerts off)
    console_url: str = DEFAULT_CONSOLE_URL  # CONSOLE_BASE_URL, for the alerts' links
    alert_deadline_seconds: float = DEFAULT_ALERT_DEADLINE_SECONDS  # ALERT_DEADLINE_SECONDS


def watch_settings(
    interval_seconds: float,
    *,
    daily_budget_usd: float = 2.0,
    price_per_image_usd: float = 0.03,
    webhook_url: SecretStr | None = None,
    console_url: str = DEFAULT_CONSOLE_URL,
    alert_deadline_seconds: float = DEFAULT_ALERT_DEADLINE_SECONDS,
) -> WatchSettings:
    _, tick = watch_cron(interval_seconds)
    return WatchSettings(
        timedelta(seconds=interval_seconds),
        timedelta(seconds=tick),
        daily_budget_usd=daily_budget_usd,
        price_per_image_usd=price_per_image_usd,
        webhook_url=webhook_url,
        console_url=console_url,
        alert_deadline_seconds=alert_deadline_seconds,
    )
