"""EXPLAIN (ANALYZE, BUFFERS) summaries of captured statements: where a slow page spends."""

import json
import re

import psycopg

from tests.bench.load import BIG_TABLES, log


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def _scan(node: dict) -> str | None:
    kind = node["Node Type"]
    if "Scan" not in kind or kind in ("Subquery Scan", "Function Scan", "Values Scan"):
        return None
    index = f" {node['Index Name']}" if node.get("Index Name") else ""
    relation = node.get("Relation Name", "?")
    rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    return f"{kind}{index} on {relation} ({rows} rows)"


def _short_sql(statement: str) -> str:
    text = " ".join(statement.split())
    text = re.sub(r"SELECT .*? FROM", "SELECT … FROM", text, count=1)
    return text[:150] + ("…" if len(text) > 150 else "")


def explain(dsn: str, pages: list[tuple[str, list]]) -> list[str]:
    """Each page's captured read statements under EXPLAIN (ANALYZE, BUFFERS), as text lines:
    time, top plan node, the scans, and any Seq Scan on a big table."""
    lines = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        for label, statements in pages:
            lines.append(f"{label}: {len(statements)} statements")
            for statement, parameters, many in statements:
                if many or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    lines.append(f"  (not explained) {_short_sql(statement)}")
                    continue
                result = connection.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters or None
                ).fetchone()[0]
                plan = (result if isinstance(result, list) else json.loads(result))[0]
                top = plan["Plan"]
                nodes = list(_walk(top))
                seq = sorted(
                    {
                        n["Relation Name"]
                        for n in nodes
                        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in BIG_TABLES
                    }
                )
                flag = f"  SEQ SCAN ON {', '.join(seq)}" if seq else ""
                lines.append(
                    f"  {plan['Execution Time']:7.2f} ms  {top['Node Type']} "
                    f"(rows={top.get('Actual Rows')}, buffers hit={top.get('Shared Hit Blocks', 0)}"
                    f" read={top.get('Shared Read Blocks', 0)}){flag}"
                )
                lines.append(f"             {_short_sql(statement)}")
                lines.extend(
                    f"               - {scan}"
                    for scan in dict.fromkeys(filter(None, map(_scan, nodes)))
                )
    for line in lines:
        log(line)
    return lines
