"""The ``searchsvc`` command line: index, delete, stats, search, serve, snapshot, restore.

Exit status: 0 success; 1 nothing done (nothing indexed, nothing deleted, or
``--strict`` with skipped input); 2 usage errors and unusable indexes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__
from .config import PACKAGE_DIR, Config, ConfigError, environment
from .contract import SORTS, TYPOS

EXAMPLE_CORPUS = PACKAGE_DIR / "data" / "examples"

INDEX_HELP = """\
Add or replace articles (by id) in the index.

PATH may be a JSON Lines file (.jsonl or .jsonl.gz; fields id, title, body and
optionally section, date, source, author, editor, url), a page file in the
site's text layout, or a directory holding either (searched recursively; a
page's id is its path below that directory without the suffix).

Broken inputs are skipped and reported with file:line and reason; the run goes
on. Exit status: 0 when anything was indexed, 1 when nothing was (or, with
--strict, when anything was skipped), 2 for usage errors.

examples:
  searchsvc index articles.jsonl.gz
  searchsvc index --rebuild --workers 2 ../shared/corpus/articles.jsonl.gz
  searchsvc index --index /srv/index pages/2025/
"""

SERVE_HELP = """\
Serve the HTTP API with gunicorn (config: searchsvc.gunicorn_conf).

When the index does not exist yet it is built first from --corpus (default:
the example corpus shipped with the package). The app is preloaded, so
jieba's dictionary loads once; workers pick up new index versions by
themselves.

examples:
  searchsvc serve
  searchsvc serve --corpus ../shared/corpus/articles.jsonl.gz --port 8000
"""


SNAPSHOT_HELP = """\
Write a consistent, verified backup of the live index into DIR (a new or empty
directory): the files of the live generation, the write journal and a manifest
with checksums. This is the backup path; run it while the service runs.

Writes wait while the files are copied (the write gate and the journal lock are
held, so the copy is one consistent state); a write waiting longer than
SEARCHSVC_WRITE_LOCK_WAIT is answered 503 + Retry-After, which the CMS retries.
The copy is then verified: its index is opened and its document count and
journal (size, last sequence number) compared with the live ones.

Exit status: 0 when the snapshot was written and verified, 2 otherwise (no
index, DIR not empty, disk full, verification failed).

examples:
  searchsvc snapshot /backup/searchsvc-$(date +%F)
  searchsvc snapshot --index /srv/index /mnt/nas/searchsvc/2026-11-27
"""

RESTORE_HELP = """\
Bring back a snapshot written by 'searchsvc snapshot', or install one shipped
from the writer host on a read replica, while the service runs.

The snapshot is verified against its manifest (every file's checksum, its index
opened and its documents counted) and refused when this searchsvc cannot read
it (another schema or analysis version); its files are copied in as a new
generation, checked again as they are written; its journal replaces the local
one and the 'current' link is swapped atomically. Running workers pick the new
generation up within SEARCHSVC_RELOAD_INTERVAL without a failed request; the
previous generation is kept for requests still reading it, older ones are
deleted. Writes made here after the snapshot was taken are gone (they are not
in its journal). When the snapshot is refused, nothing here changes; if a
restore is interrupted, run it again.

A read replica takes every generation this way and no writes: run its 'serve'
without SEARCHSVC_WRITE_TOKEN (writes answer 403) and send the CMS to the
writer host only. Its journal is the writer's as of the snapshot, so 'stats'
and /metrics show which of the writer's sequence numbers it serves. Ship each
snapshot into a new directory, and restore it once the copy is complete.

Exit status: 0 when restored, 2 otherwise (no snapshot in DIR, a file missing
or differing from the manifest, another schema, a rebuild running, disk full).

examples:
  searchsvc restore /backup/searchsvc-2026-11-27
  searchsvc restore --index /srv/index /mnt/nas/searchsvc/2026-11-27

  # a read replica, from the writer host (writer$, replica$):
  writer$  searchsvc snapshot --index /srv/index /srv/ship/$(date +%Y%m%dT%H%M)
  writer$  rsync -a /srv/ship/20261127T1200 replica1:/srv/ship/
  replica$ searchsvc restore --index /srv/index /srv/ship/20261127T1200
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="searchsvc", description="Full-text search for a Chinese news archive (jieba + Whoosh).",
        epilog="Run 'searchsvc COMMAND --help' for a command's options. "
               "The index location defaults to ./index or $SEARCHSVC_INDEX.")
    parser.add_argument("--version", action="version", version=f"searchsvc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p):
        p.add_argument("--index", metavar="DIR", help="index directory (default: $SEARCHSVC_INDEX or ./index)")
        p.add_argument("--userdict", metavar="FILE",
                       help="jieba user dictionary for domain terms (default: the one in the package)")

    p = sub.add_parser("index", help="add or replace articles", description=INDEX_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("paths", nargs="+", metavar="PATH", help="JSONL file, page file or directory")
    p.add_argument("--rebuild", action="store_true",
                   help="build a fresh index beside the live one and swap it in atomically")
    p.add_argument("--workers", type=int, metavar="N", help="processes for segmentation (default: all cores)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any input was skipped")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no per-skip lines")

    p = sub.add_parser("delete", help="delete articles by id",
                       description="Delete articles by id (journaled like the write API, so the deletion "
                                   "survives a --rebuild). Exit 1 when none of the ids existed, 2 when "
                                   "there is no index (nothing is created).")
    common(p)
    p.add_argument("ids", nargs="+", metavar="ID")

    p = sub.add_parser("stats", help="documents, sections, date range, size, journal",
                       description="Print what the index holds, and the write journal's size and last "
                                   "sequence number (use --json for machines).")
    common(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("snapshot", help="write a verified backup of the live index and journal",
                       description=SNAPSHOT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("dest", metavar="DIR", help="where to write the snapshot (a new or empty directory)")

    p = sub.add_parser("restore", help="bring back a snapshot; install a shipped one on a read replica",
                       description=RESTORE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("source", metavar="DIR", help="a directory written by 'searchsvc snapshot'")

    p = sub.add_parser("search", help="search from the command line",
                       description="Run a query against the index and print the hits (same engine as the API).")
    common(p)
    p.add_argument("q", metavar="QUERY")
    p.add_argument("--section", action="append", default=[], help="section path or prefix (repeatable)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")
    p.add_argument("--sort", choices=SORTS, default=SORTS[0])
    p.add_argument("--typos", choices=TYPOS, default=TYPOS[0],
                   help="on: also search homophones of probable pinyin typos, as the API does (the first "
                        "search of a process builds the vocabulary, ~4 s on 18,000 articles); off: the text as typed")
    p.add_argument("-n", "--limit", type=_bounded_int(1, 100), default=10, metavar="N",
                   help="hits to print (1-100, default 10)")
    p.add_argument("--page", type=_bounded_int(1, 10_000), default=1, metavar="P",
                   help="page of N hits to print (default 1)")
    p.add_argument("--json", action="store_true",
                   help="print the response body of the HTTP API's GET /search, byte for byte")
    p.add_argument("--explain", action="store_true",
                   help="show why each hit ranks where it does: its score's parts (the API's explain=true)")

    p = sub.add_parser("serve", help="serve the HTTP API with gunicorn", description=SERVE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, metavar="N", help="gunicorn workers (default: core count)")
    p.add_argument("--corpus", metavar="PATH", action="append",
                   help="what to index when the index is missing (default: the bundled examples)")
    return parser


def _bounded_int(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi], else a usage error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value
    return parse


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        config = Config.from_env(index_dir=Path(args.index) if args.index else None,
                                 userdict=Path(args.userdict) if args.userdict else None)
    except ConfigError as e:
        print(f"searchsvc: {e}", file=sys.stderr)
        return 2
    if config.userdict and not config.userdict.is_file():
        print(f"searchsvc: user dictionary {config.userdict} not found", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args, config)
    except KeyboardInterrupt:
        return 130
    except _Failure as e:
        print(f"searchsvc {args.command}: {e}", file=sys.stderr)
        return e.status


class _Failure(Exception):
    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


def cmd_index(args, config) -> int:
    from .indexing import Indexer
    from .journal import JournalCorrupt
    from .searching import UnreadableIndex
    from .store import IndexBusy

    if args.workers is not None and args.workers < 1:
        raise _Failure("--workers must be at least 1")
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing and len(missing) == len(args.paths):
        raise _Failure(f"no such file or directory: {', '.join(missing)}")
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm
        # A pty that reports a 0x0 size (script(1) without a terminal) would hide the bar.
        size = os.get_terminal_size(sys.stderr.fileno())
        bar = tqdm(unit="docs", desc="indexing", file=sys.stderr, ncols=size.columns or 80, nrows=size.lines or 24)

    def on_skip(skip):
        if not args.quiet:
            (bar.write if bar is not None else lambda m: print(m, file=sys.stderr))(f"skipped {skip}")

    indexer = Indexer(config)
    try:
        summary = indexer.index_paths(args.paths, rebuild=args.rebuild, workers=args.workers,
                                      on_skip=on_skip, progress=bar.update if bar is not None else None)
    except (IndexBusy, JournalCorrupt, UnreadableIndex) as e:
        raise _Failure(str(e)) from None
    except OSError as e:
        raise _Failure(f"cannot write the index: {e}") from None
    finally:
        if bar is not None:    # a tqdm without a total refuses bool()
            bar.close()
    print(summary.line())
    if summary.indexed + summary.updated == 0:
        return 1
    return 1 if args.strict and summary.skipped else 0


def cmd_delete(args, config) -> int:
    from .analysis import Analysis
    from .journal import JournalCorrupt
    from .store import IndexBusy, IndexMissing
    from .writes import Writer

    try:
        # Deletes segment nothing: jieba's dictionary is not loaded (Writer loads it for puts).
        results = Writer(config, Analysis(config.userdict, config.cache_dir)).delete(args.ids)
    except (IndexMissing, IndexBusy, JournalCorrupt) as e:
        raise _Failure(str(e)) from None
    except OSError as e:
        raise _Failure(f"cannot write the index: {e}") from None
    deleted = [r.id for r in results if r.result == "deleted"]
    missing = [r.id for r in results if r.result == "not_found"]
    for doc_id in missing:
        print(f"not found: {doc_id}", file=sys.stderr)
    print(f"deleted {len(deleted)}, not found {len(missing)}")
    return 0 if deleted else 1


def _engine(config):
    from .searching import Engine

    return Engine.from_config(config)


def cmd_stats(args, config) -> int:
    from .journal import Journal
    from .store import IndexMissing

    engine = _engine(config)
    try:
        view = engine.view()
    except IndexMissing as e:
        raise _Failure(str(e)) from None
    from .schema import UNDATED, minutes_to_date
    from .parsing import format_date
    dates = view.date[view.live & (view.date != UNDATED)]
    stats = {
        "index": str(engine.store.current_path()),
        "version": view.version,
        "documents": view.doc_count,
        "undated": int((view.live & (view.date == UNDATED)).sum()),
        "first_date": format_date(minutes_to_date(int(dates.min()))) if len(dates) else None,
        "last_date": format_date(minutes_to_date(int(dates.max()))) if len(dates) else None,
        "size_mb": round(engine.store.size_bytes() / 1e6, 1),
        "segments": len(view.leaves),
        "sections": engine.section_tree(),
        "needs_rebuild": engine.store.rebuild_reasons(engine.analysis.index_meta()),
    }
    size, last_seq = Journal(config.index_dir).stats()
    stats["journal"] = {"bytes": size, "last_seq": last_seq}
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=1))
        return 0
    print(f"index      {stats['index']} ({stats['version']})")
    print(f"documents  {stats['documents']} ({stats['undated']} undated) in {stats['segments']} segment(s)")
    print(f"dates      {stats['first_date']} … {stats['last_date']}")
    print(f"size       {stats['size_mb']} MB")
    print(f"journal    {size} bytes, last sequence {last_seq}")
    for reason in stats["needs_rebuild"]:
        print(f"warning    {reason}: run 'searchsvc index --rebuild'")
    print("sections")

    def show(nodes, depth):
        for n in nodes:
            print(f"  {'  ' * depth}{n['name']}  {n['count']}")
            show(n["children"], depth + 1)
    show(stats["sections"], 0)
    return 0


def _backup(action: str, config, directory: str, **kw) -> dict:
    """Run backup.snapshot or backup.restore; failures become clear messages."""
    from . import backup
    from .journal import JournalCorrupt
    from .store import IndexBusy, IndexMissing

    try:
        return getattr(backup, action)(config.index_dir, Path(directory), timeout=60.0, **kw)
    except (backup.BackupError, IndexMissing, IndexBusy, JournalCorrupt) as e:
        raise _Failure(str(e)) from None
    except OSError as e:
        raise _Failure(f"{action} failed: {e}") from None


def cmd_snapshot(args, config) -> int:
    m = _backup("snapshot", config, args.dest)
    print(f"snapshot {args.dest}: {m['documents']} documents, journal {m['journal_bytes']} bytes "
          f"up to sequence {m['journal_last_seq']}, {len(m['files'])} files verified")
    return 0


def cmd_restore(args, config) -> int:
    from .analysis import Analysis

    m = _backup("restore", config, args.source,
                analysis_meta=Analysis(config.userdict, config.cache_dir).index_meta())
    was = m["replaced"]
    print(f"restored {args.source} ({m['created']}): {m['documents']} documents, "
          f"journal up to sequence {m['journal_last_seq']}; current is now {m['generation']} "
          f"(was {was['generation'] or 'no index'}, journal up to sequence {was['journal_last_seq']})")
    for reason in m["warnings"]:
        print(f"warning: {reason} (this host analyses with user dictionary {config.userdict or 'none'}: "
              "use the writer host's dictionary, Python and OpenCC, or run 'searchsvc index --rebuild')",
              file=sys.stderr)
    return 0


def cmd_search(args, config) -> int:
    import datetime as dt

    import orjson

    from .searching import BadRequest, SearchRequest, SearchTimeout
    from .store import IndexMissing

    dates = {}
    for name in ("date_from", "date_to"):
        value = getattr(args, name)
        try:
            dates[name] = dt.date.fromisoformat(value) if value else None
        except ValueError:
            raise _Failure(f"--{name[5:]} must be a date YYYY-MM-DD, got {value!r}") from None
    if dates["date_from"] and dates["date_to"] and dates["date_from"] > dates["date_to"]:
        raise _Failure("--from must not be after --to")
    req = SearchRequest(q=args.q, sections=tuple(args.section), sort=args.sort, page=args.page,
                        per_page=args.limit, typos=args.typos == "on", explain=args.explain, **dates)
    try:
        result = _engine(config).search(req)
    except (IndexMissing, BadRequest, SearchTimeout) as e:
        raise _Failure(str(e)) from None
    if args.json:
        print(orjson.dumps(result.to_json(req)).decode())
        return 0
    print(f"{result.total} hits{' (relaxed: not every word matched)' if result.relaxed else ''} in {result.took_ms} ms")
    if result.corrected:
        print(f"showing results for {result.corrected} (--typos off: the query as typed)")
    for h in result.hits:
        print(f"{h['id']}  {h['date'] or '-'}  {h['section'] or '-'}\n  {h['title']}")
        if "explain" in h:
            print("  " + explain_line(h["explain"]))
    return 0


def explain_line(parts: dict) -> str:
    """A hit's score parts on one line: ``score 1022.30 = title holds it 1000 + 安全 4.10 + 生产 3.20 + phrase 5.00``."""
    terms = []
    if parts.get("title"):
        terms.append(f"title holds it {parts['title'] * parts['title_boost']:g}")
    if parts.get("equal_title"):
        terms.append(f"title is it {parts['equal_title'] * parts['equal_title_boost']:g}")
    words = " + ".join(f"{w} {v:.2f}" for w, v in parts["words"].items())
    if "coverage" in parts:
        words = f"({words}) × coverage {parts['coverage']:.2f}²"
    terms.append(words)
    if parts.get("phrase"):
        terms.append(f"phrase {parts['phrase']:.2f}")
    return f"score {parts['score']:.2f} = " + " + ".join(terms)


def cmd_serve(args, config) -> int:
    from .server import metrics_directory, run

    started_in = environment()      # before serve sets its own: a USR2 upgrade starts from it
    if args.workers is not None and args.workers < 1:
        raise _Failure("--workers must be at least 1")
    with metrics_directory(config) as config:
        from .analysis import Analysis
        from .indexing import Indexer

        # The engine's analysis (Engine.from_config): jieba's plain dictionary never loads in
        # the master, whose workers would each count its ~53 MB in their RSS.
        indexer = Indexer(config, Analysis.shared(config.userdict, config.cache_dir, compact=True))
        if not indexer.store.exists():
            corpus = args.corpus or [str(EXAMPLE_CORPUS)]
            print(f"no index in {config.index_dir}: building it from {', '.join(corpus)}", file=sys.stderr)
            summary = indexer.index_paths(corpus, rebuild=True,
                                          on_skip=lambda s: print(f"skipped {s}", file=sys.stderr))
            print(summary.line(), file=sys.stderr)
            if summary.documents == 0:
                raise _Failure(f"nothing could be indexed from {', '.join(corpus)}", 1)
        for warning in indexer.store.serving_warnings(indexer.analysis.index_meta()):
            print(warning, file=sys.stderr)
        t0 = time.perf_counter()
        built = indexer.ensure_sidecars()
        if built:
            print(f"built the posting sidecars of {built} segment(s) in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
        run(config, host=args.host, port=args.port, workers=args.workers or config.workers,
            started_in=started_in)
    return 0


COMMANDS = {"index": cmd_index, "delete": cmd_delete, "stats": cmd_stats, "search": cmd_search,
            "serve": cmd_serve, "snapshot": cmd_snapshot, "restore": cmd_restore}
