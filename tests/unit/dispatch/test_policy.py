from worker.dispatch.policy import Next, classify, parse_retry_after, schedule_retry

DELAYS = (1000, 30_000, 300_000)


def test_classify_statuses():
    assert classify(200, None).next is Next.SUCCESS
    assert classify(204, None).next is Next.SUCCESS
    for status in (408, 429, 500, 502, 503, 599):
        assert classify(status, None).next is Next.RETRY, status
    for status in (400, 401, 403, 404, 422):
        verdict = classify(status, None)
        assert (verdict.next, verdict.reason) == (Next.DEAD_LETTER, "client_error")
    assert classify(301, None).reason == "redirect"
    gone = classify(410, None)
    assert gone.next is Next.DEAD_LETTER and gone.disable_endpoint


def test_classify_transport_errors():
    assert classify(None, "timeout").next is Next.RETRY
    assert classify(None, "network").next is Next.RETRY
    assert classify(None, "blocked").next is Next.DEAD_LETTER


def test_schedule_follows_delays_and_ends():
    assert schedule_retry(1, DELAYS, 0, None).due_ms == 1000
    assert schedule_retry(2, DELAYS, 0, None).due_ms == 30_000
    plan = schedule_retry(3, DELAYS, 10, None)
    assert (plan.delay_ms, plan.due_ms) == (300_000, 300_010)
    assert schedule_retry(4, DELAYS, 0, None) is None  # attempts = delays + 1


def test_retry_after_is_a_lower_bound():
    shorter = schedule_retry(2, DELAYS, 0, 5_000)
    assert (shorter.delay_ms, shorter.due_ms) == (30_000, 30_000)
    longer = schedule_retry(1, DELAYS, 0, 60_000)
    assert longer.due_ms == 60_000
    assert longer.delay_ms == 300_000  # the first delay topic at least that long
    beyond = schedule_retry(1, DELAYS, 0, 3_600_000)
    assert beyond.delay_ms == 300_000 and beyond.due_ms == 3_600_000


def test_parse_retry_after():
    assert parse_retry_after("120", 0) == 120_000
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000) == 10_000
