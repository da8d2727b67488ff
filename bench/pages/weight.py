#!/usr/bin/env python3
"""What a first visit to a page costs in bytes: walks the page's import graph from its HTML
(stylesheets, module scripts, ES imports) over HTTP, as a browser would, and sums each file's
size as sent plain and gzipped (the server's own encoding, Accept-Encoding: gzip).

    python3 bench/pages/weight.py http://127.0.0.1:8080/app/
"""
import re
import sys
import urllib.error
import urllib.request
from urllib.parse import urljoin

def fetch(url, gzip):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gzip else "identity"})
    with urllib.request.urlopen(req) as r:
        return r.read(), r.headers.get("Content-Encoding"), r.headers.get("Cache-Control"), r.headers.get("ETag")

def revalidate(url, etag):
    """A repeat visit's request for a `no-cache` file: 304 and no body while it is unchanged."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag or ""})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, len(r.read())
    except urllib.error.HTTPError as e:
        return e.code, 0

def main(start):
    seen, todo, rows = set(), [start], []
    while todo:
        url = todo.pop(0)
        if url in seen:
            continue
        seen.add(url)
        body, _, cache, _ = fetch(url, False)
        packed, enc, _, etag = fetch(url, True)
        rows.append((url, len(body), len(packed), enc or "-", cache, etag))
        text = body.decode("utf-8", "replace")
        if url.endswith("/") or url.endswith(".html"):
            refs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', text)
        elif url.endswith(".js"):
            refs = re.findall(r'(?:\bfrom|\bimport)\s*\(?\s*[\'"]([^\'"]+\.js)[\'"]', text)
        else:
            refs = []
        for ref in refs:
            todo.append(urljoin(url, ref))
    plain = sum(r[1] for r in rows)
    packed = sum(r[2] for r in rows)
    for url, p, g, enc, cache, _ in rows:
        print(f"{p:>8} {g:>8} {enc:>5}  {cache:<36} {url}")
    print(f"first visit: {len(rows)} files, {plain} bytes plain, {packed} bytes as sent with gzip")
    fresh = [r for r in rows if "immutable" not in (r[4] or "")]
    answers = [revalidate(r[0], r[5]) for r in fresh]
    not_modified = sum(1 for status, _ in answers if status == 304)
    print(f"repeat visit: {len(rows) - len(fresh)} files from the cache without a request, "
          f"{len(fresh)} revalidated: {not_modified} answered 304 ({sum(n for _, n in answers)} body bytes)")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/app/")
