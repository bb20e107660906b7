"""benchmarks/tokenization.py runs, shortened (a small vocabulary on a slice of the corpus, one
repeat), and writes a results table of positive, finite numbers. No test asserts on a time."""

from __future__ import annotations

import math

from benchmarks import tokenization


def test_tokenization_benchmark_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "tokenization.md"
    assert tokenization.main(["--sizes", "260,280", "--repeats", "1", "--chars", "20000",
                              "--out", str(out)]) == 0
    text = out.read_text()
    assert text in capsys.readouterr().out, "the results are printed too"
    assert "Machine:" in text and "Load average" in text and "UTC" in text
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| 2")]
    assert [row[0].strip() for row in rows] == ["260", "280"]
    for row in rows:
        numbers = [float(cell.replace(",", "")) for cell in row]
        assert all(math.isfinite(n) and n > 0 for n in numbers), row
    bytes_per_token = [float(row[3]) for row in rows]
    assert 1.0 < bytes_per_token[0] < bytes_per_token[1], "more merges, fewer tokens"
    assert "with the same merges" in text


def test_literal_algorithm_agrees_on_the_classic_example():
    assert tokenization.literal_train("aaabdaaabac", 259) == {
        (97, 97): 256, (97, 98): 257, (256, 257): 258}
