"""MkDocs hook: serve the benchmark results from where they live, without copying them.

``benchmarks/RESULTS.md``, the generated ``benchmarks/results/report.md``, their figures
and ``report.json`` stay in ``benchmarks/`` (the suite writes them there); this hook adds
them to the site under the same relative paths, so their own links and images work and
the strict build checks them like any page.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
INCLUDED = (
    "benchmarks/RESULTS.md",
    "benchmarks/results/**/*.md",
    "benchmarks/results/**/*.png",
    "benchmarks/results/**/*.json",
)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for pattern in INCLUDED:
        for path in sorted(ROOT.glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
