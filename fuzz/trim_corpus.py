#!/usr/bin/env python3
"""Trims a fuzz corpus to at most LIMIT files that keep the most edge coverage.

usage: python3 fuzz/trim_corpus.py TARGET [LIMIT=200] [INPUT_DIR...]

Run from the repository root after `cargo fuzz build TARGET`. Reads fuzz/corpus/TARGET (and
any INPUT_DIRs, such as a larger working corpus), then:
  1. libFuzzer merge with -use_counters=0: the smallest set that keeps every edge
     (what `cargo fuzz cmin TARGET -- -use_counters=0` does);
  2. the edges of each remaining file, one process per file;
  3. greedy set cover: every seed-* file, then the file adding the most uncovered edges,
     until LIMIT files or no file adds an edge.
fuzz/corpus/TARGET is replaced by the result; the share of edges kept is printed.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY_DIR = ROOT / "fuzz" / "target" / "x86_64-unknown-linux-gnu" / "release"


def merge(binary, out_dir, in_dirs, control):
    # libFuzzer resumes from an existing control file: always start afresh.
    pathlib.Path(control).unlink(missing_ok=True)
    subprocess.run(
        [str(binary), "-merge=1", "-use_counters=0", f"-merge_control_file={control}",
         str(out_dir), *map(str, in_dirs)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edges_of(binary, path, scratch):
    inp, out = scratch / "in", scratch / "out"
    for d in (inp, out):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    shutil.copy(path, inp)
    control = scratch / "control"
    merge(binary, out, [inp], control)
    for line in control.read_text().splitlines():
        if line.startswith("COV "):
            return set(map(int, line.split()[2:]))
    return set()


def main():
    target = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    extra = [pathlib.Path(d) for d in sys.argv[3:]]
    binary = BINARY_DIR / target
    corpus = ROOT / "fuzz" / "corpus" / target
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        minimal = tmp / "minimal"
        minimal.mkdir()
        merge(binary, minimal, [corpus, *extra], tmp / "merge-control")
        for seed in corpus.glob("seed-*"):
            shutil.copy(seed, minimal)
        cover = {p: edges_of(binary, p, tmp) for p in sorted(minimal.iterdir())}
        universe = set().union(*cover.values())
        chosen = [p for p in cover if p.name.startswith("seed-")]
        covered = set().union(*(cover[p] for p in chosen))
        while len(chosen) < limit:
            best = max(cover, key=lambda p: (len(cover[p] - covered), -p.stat().st_size))
            if not cover[best] - covered:
                break
            chosen.append(best)
            covered |= cover[best]
        shutil.rmtree(corpus)
        corpus.mkdir()
        for p in chosen:
            shutil.copy(p, corpus)
    size = sum(os.path.getsize(corpus / p.name) for p in chosen)
    print(f"{target}: kept {len(chosen)} files ({size // 1024} KiB) covering "
          f"{len(covered)} of {len(universe)} edges ({100 * len(covered) / len(universe):.1f}%)")


if __name__ == "__main__":
    main()
