"""A table's results as markdown: our mean +- std beside the paper's number, and
whether the paper's ordering of rows holds in ours."""

from __future__ import annotations

import itertools

import numpy as np

from mvl.tables.spec import Column, Table


def mean_std(values: list[float | None]) -> tuple[float, float, int] | None:
    """(mean, sample std, n) of the finished seeds; None when none finished."""
    done = [v for v in values if v is not None]
    if not done:
        return None
    std = float(np.std(done, ddof=1)) if len(done) > 1 else 0.0
    return float(np.mean(done)), std, len(done)


def _cell(values) -> str:
    stats = mean_std(values)
    if stats is None:
        return "not run"
    mean, std, n = stats
    std = 0.0 if std <= 1e-9 * max(1.0, abs(mean)) else std  # equal seeds, float rounding
    text = f"{mean:.3g} ± {std:.2g}" if n > 1 else f"{mean:.3g}"
    return text if n == len(values) else f"{text} ({n} of {len(values)} seeds)"


def ordering(table: Table, column: Column, values: dict) -> dict:
    """Compares every pair of rows the paper ranks (both have a paper number, unequal)
    with ours: agree, reversed, or within noise (seed std of the two overlap; an exact
    tie, as 1-seed runs on a few hundred pairs often give, is within noise too)."""
    rows = [r for r in table.rows if column.label in r.paper]
    ours = {r.name: mean_std(values[r.name][column.label]) for r in rows}
    rows = [r for r in rows if ours[r.name] is not None]
    pairs = {"agree": [], "reversed": [], "within noise": []}
    for a, b in itertools.combinations(rows, 2):
        paper_diff = a.paper[column.label] - b.paper[column.label]
        if paper_diff == 0:
            continue
        (mean_a, std_a, _), (mean_b, std_b, _) = ours[a.name], ours[b.name]
        ours_diff = mean_a - mean_b
        pair = (a.name, b.name) if paper_diff > 0 else (b.name, a.name)  # paper: first > second
        if abs(ours_diff) <= std_a + std_b:
            pairs["within noise"].append(pair)
        elif np.sign(ours_diff) == np.sign(paper_diff):
            pairs["agree"].append(pair)
        else:
            pairs["reversed"].append(pair)
    paper_order = sorted(rows, key=lambda r: -r.paper[column.label])
    our_order = sorted(rows, key=lambda r: -ours[r.name][0])
    if not any(pairs.values()):
        verdict = "nothing to compare"
    elif pairs["reversed"]:
        verdict = "does not hold"
    elif not pairs["agree"]:
        verdict = "unresolved (every pair within seed noise)"
    elif pairs["within noise"]:
        verdict = "holds where resolved (some pairs within seed noise)"
    else:
        verdict = "holds"
    return {
        "verdict": verdict,
        "paper_order": [r.name for r in paper_order],
        "our_order": [r.name for r in our_order],
        "pairs": pairs,
    }


def markdown(table: Table, results: dict, scale: str, seeds: int, command: str) -> str:
    values, minutes = results["values"], results["minutes"]
    lines = [
        f"# {table.title}",
        "",
        f"Scale **{scale}**, seeds 0..{seeds - 1} ({seeds} per row); "
        "our numbers are mean ± sample std over seeds.",
        "",
        f"Command: `{command}`",
        "",
        f"Paper numbers: {table.source}",
        "",
    ]
    with_paper = {c.label for c in table.columns if any(c.label in r.paper for r in table.rows)}
    header = ["row"]
    for column in table.columns:
        header += [f"{column.label} (ours)"] + (["paper"] if column.label in with_paper else [])
    header.append("minutes / seed")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [row.name]
        for column in table.columns:
            cells.append(_cell(values[row.name][column.label]))
            if column.label in with_paper:
                paper = row.paper.get(column.label)
                cells.append("–" if paper is None else f"{paper:g}")
        cells.append(_cell(minutes[row.name]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Does the paper's ordering of rows hold in ours?", ""]
    compared = [ordering(table, column, values) for column in table.columns]
    if all(result["verdict"] == "nothing to compare" for result in compared):
        lines.append("- Not yet: fewer than two finished rows that the paper ranks.")
    for column, result in zip(table.columns, compared):
        if result["verdict"] == "nothing to compare":
            continue
        pairs = result["pairs"]
        counts = ", ".join(f"{len(v)} {k}" for k, v in pairs.items())
        lines.append(
            f"- **{column.label}**: {result['verdict']} ({counts} of the pairs the paper "
            f"ranks). Paper: {' > '.join(result['paper_order'])}; "
            f"ours: {' > '.join(result['our_order'])}."
        )
        if pairs["reversed"]:
            shown = "; ".join(f"{a} > {b}" for a, b in pairs["reversed"])
            lines.append(f"  Reversed in ours (paper's order shown): {shown}.")
    if table.notes:
        lines += ["", table.notes.strip()]
    return "\n".join(lines) + "\n"
