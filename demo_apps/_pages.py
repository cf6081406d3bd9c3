"""The demos' HTML: one plain, tidy layout with inline CSS (no external assets)."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["STYLE", "escape", "json_block", "page"]

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d2330; }
header { display: flex; justify-content: space-between; align-items: center;
         border-bottom: 1px solid #d8dde6; padding-bottom: .5rem; margin-bottom: 1rem; }
header a { margin-right: 1rem; }
h1 { font-size: 1.4rem; margin: 0; }
pre { background: #f4f6fa; border: 1px solid #d8dde6; border-radius: 6px; padding: .8rem;
      overflow-x: auto; font-size: .85rem; }
button, .button { font: inherit; padding: .35rem .9rem; border-radius: 6px;
                  border: 1px solid #3056d3; background: #3056d3; color: #fff;
                  cursor: pointer; text-decoration: none; }
button.secondary { background: #fff; color: #3056d3; }
form.inline { display: inline; }
.muted { color: #5b6475; }
.error { color: #a32020; }
"""


def escape(value: object) -> str:
    """HTML-escape any value."""
    return html.escape(str(value), quote=True)


def json_block(data: Any) -> str:
    """Pretty JSON in a ``<pre>`` block, escaped."""
    return f"<pre>{escape(json.dumps(data, indent=2, sort_keys=True))}</pre>"


def page(title: str, body: str, *, nav: str = "") -> str:
    """A whole HTML document: title, a header with ``nav`` (trusted HTML), then ``body``."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><nav>{nav}</nav></header>"
        f"<main>{body}</main></body></html>"
    )
