"""The `km-search` command: a thin layer over the library, one command per stage.

Every expected failure (bad query, missing or damaged index, unreadable file) is
printed as one clear line on stderr with a non-zero exit code, never a traceback.

Each command imports the layer it runs inside its function, on purpose: `km-search
--help` or `km-search info` must not pay for torch, faiss or ONNX Runtime.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from km_search.settings import SETTINGS, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="km-search: Thai knowledge-management search (BM25 + dense, offline).")
out = Console()
err = Console(stderr=True)


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code)


def _guard(fn):
    """Turn the library's user-facing errors into one-line messages."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from corpus.ingest import IngestError
        from km_search.indexdir import IndexError_
        from km_search.retrieval.rerank import RerankerError
        from km_search.search import QueryError
        from km_search.settings import SettingError

        try:
            return fn(*a, **kw)
        except (QueryError, IndexError_, IngestError, SettingError, RerankerError) as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; nothing was lost (the live index is unchanged)", 130)
    return wrapper


def _print_json(items: list[dict] | dict) -> None:
    sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=1) + "\n")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def _stages(prog: Progress):
    """A ``progress(stage, done, total)`` callback: one bar per stage."""
    tasks: dict[str, int] = {}

    def cb(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=total)
        prog.update(tasks[stage], completed=done, total=total)
    return cb


def _run_index(cfg, full: bool) -> None:
    from indexer import update_index

    with _progress() as prog:
        st = update_index(cfg, full=full, progress=_stages(prog))
    for note in st.notes:
        err.print(f"[yellow]note:[/] {note}")
    if st.unchanged:
        out.print(f"index is up to date: {st.documents} documents, {st.passages} passages")
    else:
        out.print(f"indexed: +{st.added} documents, -{st.removed} removed, {st.embedded} passages "
                  f"embedded; now {st.documents} documents, {st.passages} passages "
                  f"({'full' if st.full else 'incremental'} build {st.build}, {st.seconds:.1f}s)")


@app.command()
@_guard
def index(rebuild: bool = typer.Option(False, "--rebuild", help="Re-build from scratch."),
          seeds: bool = typer.Option(True, help="Import the bundled seed corpus into an empty store."),
          ray: Optional[str] = typer.Option(None, "--ray", help="Embed on a Ray cluster: 'auto' (this "
                                            "node's cluster), 'local' (start one here), or an address "
                                            "such as ray://head:10001. Needs the 'ray' extra."),
          home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Bring the index up to date with the document store (incremental unless --rebuild)."""
    from corpus.seeds import bundled_seeds
    from km_search.docstore import DocumentStore

    cfg = load_config(home=str(home) if home else None)
    with DocumentStore(cfg.corpus_db) as store:
        if seeds and store.count() == 0:
            added, _ = store.upsert(bundled_seeds())
            out.print(f"imported {added} bundled seed documents into {cfg.corpus_db}")
    if ray:
        try:
            from indexer.ray_pipeline import update_index_ray
        except ImportError:
            _fail("Ray is not installed: pip install 'km-search[ray]'")
        st = update_index_ray(cfg, ray, full=rebuild, log=lambda m: err.print(m, highlight=False))
        for note in st.notes:
            err.print(f"[yellow]note:[/] {note}")
        out.print(f"indexed: now {st.documents} documents, {st.passages} passages "
                  f"({'full' if st.full else 'incremental'} build {st.build}, {st.seconds:.1f}s)")
        return
    _run_index(cfg, rebuild)


@app.command("distill-queries")
@_guard
def distill_queries(
        out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder to write (default "
                                               "<models_dir>/query-student)."),
        train: Optional[Path] = typer.Option(
            None, help="Train on these texts instead of the corpus: JSONL records with 'question' "
                       "and/or 'context' (or 'text'), e.g. a QA set's train split (never an "
                       "evaluation split), or plain text, one question a line."),
        layers: str = typer.Option("0,4,8,11", help="Layers of the model the student keeps."),
        epochs: float = typer.Option(2.0, help="Passes over the training texts."),
        home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Distil a shallow query encoder (KM_SEARCH_QUERY_MODEL): new questions embed ~3x faster."""
    from km_search.embed.distill import distill_queries as run, read_training_file

    cfg = load_config(home=str(home) if home else None)
    try:
        kept = tuple(int(x) for x in layers.split(","))
        passages, questions = read_training_file(train) if train else (None, ())
    except (ValueError, OSError) as e:
        _fail(f"--layers or --train: {e}")
    with _progress() as prog:
        try:
            rep = run(cfg, out_dir, passages=passages, questions=questions, layers=kept,
                      epochs=epochs, progress=_stages(prog))
        except ValueError as e:
            _fail(str(e))
    out.print(f"query encoder written to {rep.folder} ({rep.texts} texts, layers "
              f"{','.join(map(str, rep.layers))}, held-out cosine to the model {rep.held_out_cosine:.3f}); "
              f"use it with KM_SEARCH_QUERY_MODEL={rep.folder}", highlight=False)


@app.command()
@_guard
def add(paths: list[Path] = typer.Argument(..., help="Files or folders (.txt .md .html .pdf .docx .jsonl)."),
        no_index: bool = typer.Option(False, "--no-index", help="Only store; index later."),
        home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Add local documents and update the index incrementally."""
    from corpus.ingest import collect
    from km_search.docstore import DocumentStore

    cfg = load_config(home=str(home) if home else None)
    report = collect(paths)
    for where, why in report.errors:
        err.print(f"[yellow]skipped[/] {where}: {why}", highlight=False)
    with DocumentStore(cfg.corpus_db) as store:
        added, changed = store.upsert(report.documents)
    out.print(f"read {len(report.documents)} documents: {added} new, {changed} changed, "
              f"{len(report.documents) - added - changed} unchanged; {len(report.errors)} errors")
    if not report.documents and report.errors:
        _fail("nothing could be read", 1)
    if not no_index and (added or changed):
        _run_index(cfg, False)


@app.command()
@_guard
def search(query: str = typer.Argument(..., help="Question or keywords, Thai or English "
                                       "('-' reads it from standard input)."),
           k: int = typer.Option(5, "-k", help="Number of results."),
           mode: str = typer.Option("hybrid", help="bm25 | dense | hybrid"),
           as_json: bool = typer.Option(False, "--json", help="Print JSON: the query, what was "
                                        "understood in it, and the hits."),
           ignore_understood: Optional[list[str]] = typer.Option(
               None, "--ignore", help="Drop an understood item, as kind:value (repeatable), "
                                      "e.g. --ignore province:ขอนแก่น"),
           date_from: Optional[str] = typer.Option(None, help="ISO date, inclusive."),
           date_to: Optional[str] = typer.Option(None, help="ISO date, inclusive."),
           publisher: Optional[str] = typer.Option(None), province: Optional[str] = typer.Option(None),
           home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Search the index."""
    from km_search.search import Filters, Searcher, clean_query

    cfg = load_config(home=str(home) if home else None)
    if query == "-":
        query = sys.stdin.read(cfg.max_query_chars + 1)
    clean_query(query, cfg.max_query_chars)  # fail fast, before loading anything
    from km_search.query.understand import plan

    s = Searcher(cfg)
    q = clean_query(query, cfg.max_query_chars)
    qp = plan(q, ignore_understood or ())
    hits = s.search(q, k=k, mode=mode,
                    filters=Filters(date_from, date_to, publisher, province), plan=qp)
    if as_json:
        _print_json({"query": q, "understood": qp.understood, "hits": [h.to_dict() for h in hits]})
        return
    for it in qp.items:
        out.print(f"[dim]understood {it.kind} {it.mode}: {it.label} (\"{it.text}\")[/]", highlight=False)
    if not hits:
        out.print("no results")
    for h in hits:
        snippet = h.snippet
        for a, b in reversed(h.highlights):
            snippet = snippet[:a] + "\x00" + snippet[a:b] + "\x01" + snippet[b:]
        from rich.markup import escape
        snippet = escape(snippet).replace("\x00", "[bold yellow]").replace("\x01", "[/]")
        date = h.published or "?"
        out.print(f"[bold]{h.rank}. {escape(h.title)}[/]  [dim]{escape(h.publisher)} · {date} · "
                  f"score {h.score:.3f} · {h.doc_id}#{h.ordinal}[/]")
        if h.url:
            out.print(f"   [blue]{escape(h.url)}[/]")
        out.print("   " + snippet.replace("\n", " "), highlight=False)


@app.command()
@_guard
def ask(question: str = typer.Argument(..., help="A question, Thai or English ('-' reads it from "
                                       "standard input)."),
        k: int = typer.Option(5, "-k", help="Passages to search (at least 4 are read)."),
        as_json: bool = typer.Option(False, "--json", help="Print the answer and citations as JSON."),
        generate: Optional[bool] = typer.Option(None, "--generate/--extractive",
                                                help="Use the llm_url endpoint (default: when set)."),
        province: Optional[str] = typer.Option(None), publisher: Optional[str] = typer.Option(None),
        home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Answer a question with cited sentences: the same answer as POST /chat."""
    from km_search.answer import ask as ask_, passage_link
    from km_search.search import Filters, Searcher, clean_query

    cfg = load_config(home=str(home) if home else None)
    if question == "-":
        question = sys.stdin.read(cfg.max_query_chars + 1)
    question = clean_query(question, cfg.max_query_chars)
    from km_search.lessons import LessonStore

    from km_search.query.understand import plan

    searcher = Searcher(cfg)
    with LessonStore.for_config(cfg, sync=True, embedder=searcher.embedder) as st:
        ans, _ = ask_(searcher, question, k=k, filters=Filters(None, None, publisher, province),
                      generate=generate, cards=st.get, plan=plan(question, ()))
    cites = [{"n": i, "doc_id": h.doc_id, "chunk_id": h.chunk_id, "title": h.title, "url": h.url,
              "link": passage_link(h)} for i, h in enumerate(ans.cited, 1)]
    if as_json:
        sys.stdout.write(json.dumps({"question": question, "answer": ans.text, "found": ans.found,
                                     "mode": ans.mode, "note": ans.note, "citations": cites},
                                    ensure_ascii=False, indent=1) + "\n")
        return
    from rich.markup import escape

    out.print(escape(ans.text), highlight=False)
    if ans.note:
        err.print(f"[yellow]note:[/] {escape(ans.note)}")
    for c in cites:
        mark = escape(f"[{c['n']}]")
        out.print(f"  {mark} {escape(c['title'])}  [dim]{escape(c['link'])}[/]", highlight=False)


@app.command()
@_guard
def info(verify: bool = typer.Option(False, help="Also check every index file's checksum."),
         home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Show settings, the document store and the live index."""
    from km_search.docstore import DocumentStore
    from km_search import indexdir

    cfg = load_config(home=str(home) if home else None)
    out.print(f"[bold]home[/] {cfg.home_path}")
    for s in SETTINGS:
        value = getattr(cfg, s.name)
        shown = "'***'" if s.secret and value else repr(str(value) if isinstance(value, Path) else value)
        out.print(f"  {s.name} = {shown}  [dim]({s.env})[/]")
    if cfg.corpus_db.exists():
        with DocumentStore(cfg.corpus_db) as store:
            out.print(f"[bold]documents[/] {store.count()}")
    build = indexdir.live_build(cfg.home_path)
    if build is None:
        out.print("[bold]index[/] none yet: run `km-search index`")
        return
    man = indexdir.read_manifest(build, verify=verify)
    out.print(f"[bold]index[/] {build}" + ("  [green]checksums ok[/]" if verify else ""))
    out.print(f"  model {man['model']['name']} (dim {man['model']['dim']}), backend "
              f"{indexdir.backend_of(man)}, dense {man['dense']['kind']}, "
              f"tokenizer {man['tokenizer']['engine']}")
    out.print(f"  {man['counts']['documents']} documents, {man['counts']['passages']} passages, "
              f"built {man['created_at']}")


def _eval_out(table: str, res: dict, as_json: Optional[Path]) -> None:
    out.print(table, highlight=False)
    if as_json:
        as_json.write_text(json.dumps(res, ensure_ascii=False, indent=1))


@app.command("eval")
@_guard
def eval_cmd(data: Path = typer.Option(Path("../shared/data/iapp-wiki-qa"), help="iapp-wiki-qa folder."),
             split: str = typer.Option("test", help="test | valid"),
             limit: int = typer.Option(0, help="Ask only the first N questions (0 = all); the "
                                       "corpus stays whole (unless --corpus), so the figures "
                                       "estimate a full run's."),
             corpus_limit: int = typer.Option(0, "--corpus", help="Index only the asked questions' contexts "
                                        "plus other contexts up to N in all (0 = the whole corpus; "
                                        "figures then compare only with runs of the same N)."),
             english: bool = typer.Option(True, help="Also run the English-question set over the seeds."),
             tune: bool = typer.Option(False, help="Sweep fusion settings (only allowed on valid)."),
             judgements: Optional[Path] = typer.Option(
                 None, help="Instead: score the live index against relevance judgements (JSONL, "
                            "e.g. GET /feedback/judgements.jsonl from `km-search serve`)."),
             answers: bool = typer.Option(False, "--answers", help="Instead: answer quality (gold "
                                          "sentence, right entity) and the no-answer gate on a second corpus."),
             roles: bool = typer.Option(False, "--roles", help="Instead: sentence roles and lesson cards on "
                                        "the held-out sentences and documents."),
             as_json: Optional[Path] = typer.Option(None, "--json", help="Write results as JSON here."),
             sets: Optional[str] = typer.Option(
                 None, "--set", help="Instead: the query-language slices, on 'iapp', 'tatoeba' or "
                                     "'iapp,tatoeba' (split dev = iapp valid + Tatoeba even lines, "
                                     "test = iapp test + Tatoeba odd lines)."),
             queries: str = typer.Option("th,en,mixed", help="With --set iapp: question languages "
                                         "(th, en = our English versions, mixed = Thai with an "
                                         "English key term)."),
             tatoeba: Path = typer.Option(Path("../shared/data/tatoeba-tha-eng"), help="Tatoeba folder."),
             home: Optional[Path] = typer.Option(None, help="Data directory (for the model cache).")) -> None:
    """Passage-retrieval benchmark: R@1/5/10 and MRR@10 for bm25, dense and hybrid."""
    from bench import evaluate

    cfg = load_config(home=str(home) if home else None)
    if answers or roles:
        from bench import answers as A, lessons as L

        res = (A.run(cfg, data, log=lambda m: err.print(m, highlight=False)) if answers
               else L.run_roles(cfg))
        out.print(A.format_table(res) if answers else L.format_roles(res), highlight=False)
        if as_json:
            as_json.write_text(json.dumps(res, ensure_ascii=False, indent=1))
        return
    if sets:
        try:
            res = evaluate.run_slices(
                cfg, {"valid": "dev"}.get(split, split),
                queries=tuple(q.strip() for q in queries.split(",") if q.strip()),
                sets=tuple(x.strip() for x in sets.split(",") if x.strip()), iapp_dir=data,
                tatoeba_dir=tatoeba, limit=limit, tune=tune, log=lambda m: err.print(m, highlight=False))
        except ValueError as e:
            _fail(str(e))
        return _eval_out(evaluate.format_slices(res), res, as_json)
    if judgements:
        if not judgements.exists():
            _fail(f"no such judgements file: {judgements}")
        try:
            res = evaluate.run_judgements(cfg, judgements, log=lambda m: err.print(m, highlight=False))
        except ValueError as e:
            _fail(str(e))
        return _eval_out(evaluate.format_table(res), res, as_json)
    try:
        res = evaluate.run(cfg, data, split=split, limit=limit, tune=tune, english=english,
                           log=lambda m: err.print(m, highlight=False), corpus_limit=corpus_limit)
    except ValueError as e:
        _fail(str(e))
    out.print(evaluate.format_table(res))
    if as_json:
        as_json.write_text(json.dumps(res, ensure_ascii=False, indent=1))


@app.command()
@_guard
def bench(sizes: str = typer.Option("10000,100000,1000000", help="Comma-separated corpus sizes."),
          data: Path = typer.Option(Path("../shared/data/iapp-wiki-qa"), help="iapp-wiki-qa folder (base passages)."),
          queries: int = typer.Option(200, help="Queries timed per size (and per HTTP run)."),
          repeats: int = typer.Option(3, help="Repeats for throughput medians."),
          base_limit: int = typer.Option(0, help="Use only the first N base passages (0 = all)."),
          http: bool = typer.Option(True, "--http/--no-http",
                                    help="Also serve each size with `km-search serve` on 127.0.0.1 "
                                         "and time /search over HTTP."),
          concurrency: str = typer.Option("1,4", help="HTTP load: concurrent requests, comma-separated "
                                                      "levels (each 1-16)."),
          warmup: int = typer.Option(5, help="Untimed HTTP requests before each timed run."),
          keep: Optional[Path] = typer.Option(None, help="Keep each size's servable home in KEEP/<size> "
                                                         "(default: a temporary folder, deleted)."),
          as_json: Optional[Path] = typer.Option(None, "--json", help="Write results as JSON here."),
          home: Optional[Path] = typer.Option(None, help="Data directory (for the model and cache).")) -> None:
    """Scale benchmark: build time, size, RSS and p50/p99 latency at 10k..1M passages,
    in-process and over HTTP."""
    from bench import speed as B

    cfg = load_config(home=str(home) if home else None)
    try:
        ns = [int(x.replace("_", "")) for x in sizes.split(",") if x.strip()]
        levels = [int(x) for x in concurrency.split(",") if x.strip()] if http else []
    except ValueError:
        _fail(f"--sizes and --concurrency must be comma-separated integers, not {sizes!r} / "
              f"{concurrency!r}")
    if any(not 1 <= c <= 16 for c in levels) or (http and not levels):
        _fail(f"--concurrency levels must be between 1 and 16, not {concurrency!r}")
    res = B.run(cfg, ns, data if data.exists() else None, queries, repeats, base_limit,
                log=lambda m: err.print(m, highlight=False), http=levels, warmup=warmup,
                keep=keep.resolve() if keep else None)
    out.print(B.format_table(res), highlight=False, soft_wrap=True)  # wide tables: no wrapping
    if as_json:
        as_json.write_text(json.dumps(res, ensure_ascii=False, indent=1))


@app.command()
@_guard
def lessons(province: Optional[str] = typer.Option(None, help="Only cases in this province."),
            agency: Optional[str] = typer.Option(None, help="Agency name or abbreviation (พช., คร., ก.พ.ร.)."),
            year: Optional[int] = typer.Option(None, help="B.E. >= 2400 is a Thai fiscal year; else C.E. year."),
            factor: Optional[str] = typer.Option(None, help="Success-factor tag, e.g. collaboration."),
            compare: Optional[list[str]] = typer.Option(None, "--compare",
                                                        help="2-5 lesson refs (doc_id or doc_id#province); "
                                                             "repeat or comma-separate."),
            out_file: Optional[Path] = typer.Option(None, "--out", help="Write the comparison to .md or .docx."),
            as_json: bool = typer.Option(False, "--json", help="Print lesson cards as JSON."),
            home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Browse lesson cards, or compare cases side by side as a workshop handout."""
    from km_search.lessons import LessonStore
    from km_search.lessons import compare as C

    cfg = load_config(home=str(home) if home else None)
    with LessonStore.for_config(cfg) as st:
        if compare:
            refs = [r.strip() for item in compare for r in item.split(",") if r.strip()]
            try:
                comp = C.build(refs, store=st)
            except (KeyError, ValueError) as e:
                _fail(str(e).strip("'\""))
            if out_file and out_file.suffix.lower() == ".docx":
                C.to_docx(comp, out_file)
                out.print(f"wrote {out_file}")
            elif out_file:
                out_file.write_text(C.to_markdown(comp), encoding="utf-8")
                out.print(f"wrote {out_file}")
            else:
                sys.stdout.write(C.to_markdown(comp))
            return
        cards = st.query(province=province, agency=agency, year=year, factor=factor)
        if as_json:
            _print_json([c.to_dict() for c in cards])
            return
        if not cards:
            out.print("no lessons match")
        from rich.markup import escape
        for c in cards:
            out.print(f"[bold]{escape(c.ref)}[/]  FY{c.fiscal_year}  {escape(c.case_name)}", highlight=False)
            for f in c.success_factors[:3]:
                out.print(f"   • {escape(f.text[:140])}", highlight=False)

@app.command()
@_guard
def crawl(source: Optional[str] = typer.Argument(
              None, help="Source name in sources.toml, or a site URL (https://www.example.go.th/): "
                         "a URL becomes a source with default settings, saved in <home>/sources.toml."),
          status: bool = typer.Option(False, "--status", help="Per source: last run, documents, errors with reasons."),
          report: Optional[Path] = typer.Option(None, "--report", help="Score SOURCE's stored documents against "
                                                "an answer key (JSON: documents, not_documents, markers)."),
          every: Optional[float] = typer.Option(None, "--every", help="Re-crawl every SECONDS (runs until Ctrl-C)."),
          max_pages: Optional[int] = typer.Option(None, "--max-pages", help="Fetches per source per run."),
          prune: bool = typer.Option(False, "--prune", help="Delete documents that vanished from the source."),
          no_index: bool = typer.Option(False, "--no-index", help="Only update the document store."),
          sources: Optional[Path] = typer.Option(None, "--sources", help="Sources file (default corpus/sources.toml)."),
          home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Crawl sources (or one site URL) into the store; each source is indexed when it finishes."""
    from corpus.crawl.config import SourceError
    from corpus.crawl.runner import crawl_report, crawl_status, run_crawl, run_every

    cfg = load_config(home=str(home) if home else None)
    if status:
        from rich.markup import escape
        for s in crawl_status(cfg):
            out.print(f"{s['source']}: last finished {s['last_finished'] or '-'} · {s['documents']} docs · "
                      f"run {s['status']} (fetched {s['fetched']}, unchanged {s['not_modified']}, "
                      f"+{s['added']} ~{s['changed']}, {s['errors']} errors, {s['pending']} pending)"
                      + (f" · {escape(s['note'])}" if s["note"] else ""), highlight=False)
            for url, reason in s["error_list"]:
                out.print(f"   error {escape(url)}: {escape(reason)}", highlight=False)
            for url, reason in s["warnings"]:
                out.print(f"   {escape(reason)} ({escape(url)})", highlight=False)
        return
    if report:
        if not source:
            _fail("--report needs the SOURCE whose documents to score")
        try:
            out.print(crawl_report(cfg, source, report), highlight=False)
        except (OSError, ValueError, KeyError) as e:
            _fail(f"cannot score {source} against {report}: {e}")
        return
    names = [source] if source else None
    kw = dict(sources=sources, max_pages=max_pages, prune=prune, index=not no_index,
              progress=lambda url, done, total: err.print(f"[{done}/{total}] {url}", highlight=False))

    def show(reports) -> None:
        for r in reports:
            out.print(f"{r.source}: fetched {r.fetched}, unchanged {r.not_modified}, +{r.added} ~{r.changed} "
                      f"-{r.pruned}, {len(r.errors)} errors, {len(r.warnings)} warnings, "
                      f"{r.pages_per_s:.1f} pages/s" + (" (resumed)" if r.resumed else "")
                      + (" · indexed" if r.indexed else ""), highlight=False)
        if any(r.errors for r in reports):
            out.print("details: km-search crawl --status", highlight=False)

    try:
        if every:
            run_every(cfg, every, names, on_run=show, **kw)
        show(run_crawl(cfg, names, **kw))
    except SourceError as e:
        _fail(str(e))


@app.command()
@_guard
def serve(host: Optional[str] = typer.Option(None, help="Listen address (KM_SEARCH_SERVE_HOST, default 127.0.0.1)."),
          port: Optional[int] = typer.Option(None, help="Port (KM_SEARCH_SERVE_PORT, default 8000)."),
          workers: Optional[int] = typer.Option(None, help="Server processes (KM_SEARCH_SERVE_WORKERS; "
                                                "default one per CPU core)."),
          home: Optional[Path] = typer.Option(None, help="Data directory (KM_SEARCH_HOME).")) -> None:
    """Run the web API and chat page (OpenAPI at /docs)."""
    import uvicorn

    cfg = load_config(home=str(home) if home else None, serve_host=host, serve_port=port,
                      serve_workers=workers)
    n = cfg.serve_workers or os.cpu_count() or 1
    # the workers build their app from the environment: pass the resolved options on
    os.environ.update({"KM_SEARCH_HOME": str(cfg.home_path), "KM_SEARCH_SERVE_HOST": cfg.serve_host,
                       "KM_SEARCH_SERVE_PORT": str(cfg.serve_port)})
    if n > 1 and not cfg.embed_threads:  # each worker embeds on its share of the cores
        os.environ.update(KM_SEARCH_EMBED_THREADS=str(max(1, (os.cpu_count() or 1) // n)))
    err.print(f"km-search at http://{cfg.serve_host}:{cfg.serve_port}/ (home {cfg.home_path}, "
              f"{n} worker{'s' if n > 1 else ''})", highlight=False)
    uvicorn.run("api.app:app_from_env", factory=True, host=cfg.serve_host, port=cfg.serve_port,
                workers=n, h11_max_incomplete_event_size=32 * 1024, timeout_keep_alive=15,
                log_level="warning" if n > 1 else "info")


def main() -> None:  # console-script entry
    app()


if __name__ == "__main__":
    main()
