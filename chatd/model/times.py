"""Message times as every door spells them: UTC, to the millisecond.

A message's time is milliseconds since 1970 (events and history keep it so);
the line door's HISTORY lines and IRC's server-time tags both spell it
2026-11-30T23:50:01.123Z, so it lives here, below both doors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_time(millis: int) -> str:
    """Spell a time in milliseconds since 1970 as docs/protocol.md's UTC time.

    2026-11-30T23:50:01.123Z: always three decimals and a Z.
    """
    moment = EPOCH + timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
