"""Summarise a `py-spy record --format raw` profile: where the server's time goes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str, root: str) -> str:
    """`render (/x/chatd/line/wire.py:62)` -> `render (chatd/line/wire.py)`, merged."""
    found = FRAME.match(frame.strip())
    if not found:
        return frame.strip()
    path = found.group("file")
    for prefix in (root.rstrip("/") + "/", "/usr/lib/", "/usr/local/lib/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    path = re.sub(r"^.*?/(site|dist)-packages/", "", path)
    path = re.sub(r"^python3\.\d+/", "", path)
    return f"{found.group('function')} ({path})"


def summarise(raw: Path, root: str, top: int = 15) -> str:
    """Return the top functions by own time and by inclusive time, as text."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for text in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = text.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f, root) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return "the profile holds no samples"
    lines = [f"{total} samples of the busy server (idle waits not sampled)", ""]
    lines.append("own time (the function itself, not what it calls):")
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    lines.append("")
    lines.append("inclusive time (the function and everything it calls):")
    # Frames under nearly every sample are the reactor's scaffolding: skipped.
    busy = [(n, c) for n, c in inclusive.most_common() if c < 0.97 * total]
    for name, count in busy[:top]:
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    return "\n".join(lines)
