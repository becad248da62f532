"""chatd's load benchmark: fanout, chatter and idle, against chatd and ngircd.

Run `python -m bench --help` (or `python bench/run.py --help`); docs/performance.md
says what each scenario measures and how.
"""
