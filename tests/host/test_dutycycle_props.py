"""Properties of the duty-cycle accountant and the join back-off (hypothesis).

- Any sequence of sends the accountant allowed keeps every sub-band within its limit: for sends
  i < j in one sub-band, divisor * (airtime_i + ... + airtime_(j-1)) <= t_j - t_i, hence any
  window of W ms holds at most W / divisor + one frame of airtime (checked for one hour).
- wait_ms is exact and monotone-safe: sending at now + wait_ms is allowed, one ms earlier is not.
- save()/restore() across a clock restart answers exactly as the original would.
- The join back-off never lets the airtime of a budget period exceed 36 s / 36 s / 8.7 s.
"""

from collections import defaultdict

import eu868
from dutycycle import DutyCycle, JoinBackoff
from hypothesis import given, settings
from hypothesis import strategies as st

H = 3600000

freqs = st.one_of(
    st.sampled_from(
        eu868.DEFAULT_CHANNELS
        + (eu868.RX2_FREQUENCY_HZ, 868800000, 867100000, 869800000, 868650000)
    ),
    st.integers(eu868.FREQ_MIN_HZ, eu868.FREQ_MAX_HZ),
)
airtimes = st.integers(0, 3000)
gaps = st.integers(0, 400000)
attempts = st.lists(st.tuples(gaps, freqs, airtimes, st.booleans()), max_size=60)
# Join traffic: mostly back-to-back retries so budgets fill up, with round sizes that hit them exactly.
join_gaps = st.one_of(st.integers(0, 2000), st.integers(0, 4 * H))
join_airtimes = st.one_of(
    st.integers(0, 5000), st.sampled_from([700, 1000, 1500, 4500, 6000, 8700])
)


def _send_all(ops, start=0):
    """Play ops against a fresh accountant: each op either waits as told or gives up if refused."""
    dc = DutyCycle()
    t = start
    sent = defaultdict(list)  # sub-band -> [(t, airtime)]
    for gap, freq, airtime, patient in ops:
        t += gap
        wait = dc.wait_ms(t, freq, airtime)
        if wait and not patient:
            continue
        t += wait
        assert dc.wait_ms(t, freq, airtime) == 0
        dc.record(t, freq, airtime)
        sent[eu868.sub_band(freq)].append((t, airtime))
    return dc, t, sent


@settings(max_examples=300)
@given(attempts, st.integers(-(2**45), 2**45))
def test_allowed_sends_respect_each_sub_band_limit(ops, start):
    _, _, sent = _send_all(ops, start)
    for band, frames in sent.items():
        divisor = eu868.sub_band_divisor(band)
        for i in range(len(frames)):
            total = 0
            for j in range(i + 1, len(frames)):
                total += frames[j - 1][1]
                assert divisor * total <= frames[j][0] - frames[i][0]
        longest = max(a for _, a in frames)
        for i in range(len(frames)):
            in_hour = sum(a for t, a in frames if frames[i][0] <= t < frames[i][0] + H)
            assert in_hour * divisor <= H + longest * divisor


@settings(max_examples=300)
@given(
    st.lists(st.tuples(gaps, freqs, airtimes), max_size=30),
    st.integers(-(10**6), 10**7),
    freqs,
    airtimes,
)
def test_wait_is_exact_and_monotone_safe(records, probe_offset, freq, airtime):
    dc = DutyCycle()
    t = 0
    for gap, f, a in records:  # recorded whether allowed or not (forced sends too)
        t += gap
        dc.record(t, f, a)
    now = t + probe_offset
    wait = dc.wait_ms(now, freq, airtime)
    assert wait >= 0
    assert dc.wait_ms(now + wait, freq, airtime) == 0
    if wait:
        assert dc.wait_ms(now + wait - 1, freq, airtime) == 1
    for later in (1, wait // 2, wait + 1, 10 * H):
        assert dc.wait_ms(now + later, freq, airtime) == max(0, wait - later)


@settings(max_examples=200)
@given(attempts, st.integers(0, 10**7), st.integers(-(10**9), 10**9), st.integers(0, 10**6))
def test_save_restore_across_clock_restart(ops, probe, new_clock, slept):
    dc, t, _ = _send_all(ops)
    state = dc.save(t)
    assert all(isinstance(v, int) and 0 <= v < 2**31 for v in state)
    again = DutyCycle()
    again.restore(new_clock, state, slept_ms=slept)
    for freq in (868100000, 869525000, 868800000, 865000000, 869700000, 863500000):
        assert again.wait_ms(new_clock + probe, freq, 100) == dc.wait_ms(
            t + slept + probe, freq, 100
        )


def _period(elapsed):
    if elapsed < H:
        return 0, 36000
    if elapsed < 11 * H:
        return 1, 36000
    return 2 + (elapsed - 11 * H) // (24 * H), 8700


@settings(max_examples=300)
@given(
    st.integers(-(2**40), 2**40),
    st.lists(st.tuples(join_gaps, join_airtimes, st.booleans()), max_size=80),
)
def test_join_budgets_never_exceeded(start, ops):
    jb = JoinBackoff(start)
    t = start
    used = defaultdict(int)
    for gap, airtime, patient in ops:
        t += gap
        wait = jb.wait_ms(t, airtime)
        if wait and not patient:
            continue
        t += wait
        assert jb.wait_ms(t, airtime) == 0
        jb.record(t, airtime)
        period, budget = _period(t - start)
        used[period] += airtime
        assert used[period] <= budget
        assert jb.used_ms(t) == used[period]


@settings(max_examples=300)
@given(
    st.one_of(st.just(0), st.integers(0, 60 * H)),
    st.lists(st.tuples(join_gaps, join_airtimes), max_size=40),
    st.one_of(st.integers(0, 2000), st.integers(-H, 50 * H)),
    st.integers(0, 8700),
)
def test_join_wait_is_monotone_safe(first, records, probe_offset, airtime):
    jb = JoinBackoff(0)
    t = first
    for gap, a in records:
        t += gap
        jb.record(t, a)
    now = t + probe_offset
    wait = jb.wait_ms(now, airtime)
    assert wait == 0 or jb.used_ms(now) + airtime > _period(max(now, 0))[1]
    assert wait >= 0
    assert jb.wait_ms(now + wait, airtime) == 0
    if wait:
        assert jb.wait_ms(now + wait - 1, airtime) > 0
        # exact: the wait ends where the next budget period starts
        assert _period(now + wait)[0] == _period(max(now, 0))[0] + 1
    # exact at the budget edge: what is left fits, one ms more does not
    left = _period(max(now, 0))[1] - jb.used_ms(now)
    if 0 <= left <= 8699:
        assert jb.wait_ms(now, left) == 0
        assert jb.wait_ms(now, left + 1) > 0


@settings(max_examples=200)
@given(
    st.lists(st.tuples(join_gaps, join_airtimes), max_size=30),
    st.integers(0, 10 * H),
    st.integers(0, 200 * H),
    st.integers(-(10**9), 10**9),
    st.integers(0, 8700),
)
def test_join_save_restore_across_clock_restart(records, probe, slept, new_clock, airtime):
    jb = JoinBackoff(0)
    t = 0
    for gap, a in records:
        t += gap
        jb.record(t, a)
    state = jb.save(t)
    assert all(isinstance(v, int) and 0 <= v < 2**31 for v in state)
    again = JoinBackoff(12345)
    again.restore(new_clock, state, slept_ms=slept)
    assert again.wait_ms(new_clock + probe, airtime) == jb.wait_ms(t + slept + probe, airtime)
